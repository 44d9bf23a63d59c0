"""Ollama request options as a suite gives them (ollama-api.md §1.2)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from novabench.config.types import Bool, Float, Int, Text


class OllamaOptions(BaseModel):
    """Ollama request `options` (ollama-api.md §1.2); a key left as None is not sent."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    expected: ClassVar[str] = "a mapping of Ollama options, e.g. {temperature: 0, seed: 42}"

    num_predict: Int | None = Field(
        default=None,
        description="the most tokens to generate (Ollama: -1, no limit but the context)",
    )
    temperature: Float | None = Field(
        default=None, description="sampling temperature; 0 picks the likeliest token (Ollama: 0.8)"
    )
    seed: Int | None = Field(
        default=None, description="random seed, for repeatable answers (Ollama: -1, random)"
    )
    top_k: Int | None = Field(
        default=None, description="sample from the k likeliest tokens only (Ollama: 40)"
    )
    top_p: Float | None = Field(
        default=None,
        description="sample from the likeliest tokens holding this much probability (Ollama: 0.9)",
    )
    min_p: Float | None = Field(
        default=None,
        description="drop tokens less likely than this fraction of the likeliest one",
    )
    typical_p: Float | None = Field(
        default=None, description="locally typical sampling (Ollama: 1.0, off)"
    )
    repeat_last_n: Int | None = Field(
        default=None, description="how far back, in tokens, repetition is penalised (Ollama: 64)"
    )
    repeat_penalty: Float | None = Field(
        default=None, description="penalty on repeated tokens (Ollama: 1.0, none)"
    )
    presence_penalty: Float | None = Field(
        default=None, description="penalty on tokens already in the text (Ollama: 0)"
    )
    frequency_penalty: Float | None = Field(
        default=None,
        description="penalty growing with how often a token already occurs (Ollama: 0)",
    )
    stop: list[Text] | None = Field(
        default=None,
        description="a string or a list of strings: generation stops at any of them",
        json_schema_extra={"expected": "a string or a list of strings"},
    )
    num_keep: Int | None = Field(
        default=None,
        description="prompt tokens kept when the context fills and shifts (Ollama: 4)",
    )
    num_ctx: Int | None = Field(
        default=None,
        description="context length in tokens; a load option (Ollama's default depends on its "
        "version and GPU memory)",
    )
    num_batch: Int | None = Field(
        default=None, description="prompt tokens evaluated per batch; a load option (Ollama: 512)"
    )
    num_gpu: Int | None = Field(
        default=None,
        description="layers offloaded to the GPU; a load option (Ollama: -1, automatic)",
    )
    main_gpu: Int | None = Field(
        default=None, description="the GPU for small tensors when there are several; a load option"
    )
    use_mmap: Bool | None = Field(
        default=None, description="map the model file into memory; a load option"
    )
    num_thread: Int | None = Field(
        default=None, description="CPU threads; a load option (Ollama: 0, automatic)"
    )
    draft_num_predict: Int | None = Field(
        default=None, description="tokens a draft model proposes at a time (speculative decoding)"
    )

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_string_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def to_request(self) -> dict[str, Any]:
        """The options as sent to Ollama: only the keys that were set."""
        return self.model_dump(exclude_none=True)
