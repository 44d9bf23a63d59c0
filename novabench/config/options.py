"""Ollama request options as a suite gives them (ollama-api.md §1.2)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from novabench.config.types import Bool, Float, Int, Text


class OllamaOptions(BaseModel):
    """Ollama request `options` (ollama-api.md §1.2); a key left as None is not sent."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    expected: ClassVar[str] = "a mapping of Ollama options, e.g. {temperature: 0, seed: 42}"

    num_predict: Int | None = None
    temperature: Float | None = None
    seed: Int | None = None
    top_k: Int | None = None
    top_p: Float | None = None
    min_p: Float | None = None
    typical_p: Float | None = None
    repeat_last_n: Int | None = None
    repeat_penalty: Float | None = None
    presence_penalty: Float | None = None
    frequency_penalty: Float | None = None
    stop: list[Text] | None = Field(default=None, description="a string or a list of strings")
    num_keep: Int | None = None
    num_ctx: Int | None = None
    num_batch: Int | None = None
    num_gpu: Int | None = None
    main_gpu: Int | None = None
    use_mmap: Bool | None = None
    num_thread: Int | None = None
    draft_num_predict: Int | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_string_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def to_request(self) -> dict[str, Any]:
        """The options as sent to Ollama: only the keys that were set."""
        return self.model_dump(exclude_none=True)
