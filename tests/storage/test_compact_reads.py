"""The run page's read of a big run: every result as `results` reads it, without texts and with
compact arrival arrays; the texts of the few it lists, and records made without __init__."""

from __future__ import annotations

import dataclasses

import pytest

from novabench.records import Request, ResourceSample, StoredResult, from_fields
from novabench.storage.store import Store
from tests.report.big_run import add_load_run


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    made = Store(tmp_path_factory.mktemp("compact") / "db.duckdb")
    add_load_run(made, 400, run_id="20260101T000000Z-small", concurrency=(1, 2, 4, 8))
    return made


def test_results_for_figures_are_the_results_without_texts(store: Store) -> None:
    full = store.results("20260101T000000Z-small")
    compact = store.results_for_figures("20260101T000000Z-small")
    assert len(compact) == len(full) > 400
    for whole, light in zip(full, compact, strict=True):
        assert list(light.token_offsets_s) == list(whole.token_offsets_s or [])
        assert light == dataclasses.replace(
            whole, response_text="", thinking_text="", token_offsets_s=light.token_offsets_s
        )


def test_texts_of_the_listed_requests(store: Store) -> None:
    full = {r.seq: r for r in store.results("20260101T000000Z-small")}
    wanted = [0, 5, 17]
    texts = store.texts("20260101T000000Z-small", wanted)
    assert texts == {seq: (full[seq].response_text, full[seq].thinking_text) for seq in wanted}


def test_from_fields_needs_exactly_the_fields() -> None:
    sample = {f.name: None for f in dataclasses.fields(ResourceSample)}
    sample["offset_s"] = 1.0
    assert from_fields(ResourceSample, dict(sample)) == ResourceSample(**sample)
    with pytest.raises(TypeError, match="differ"):
        from_fields(ResourceSample, {"offset_s": 1.0})


@pytest.mark.parametrize("record", [Request, StoredResult, ResourceSample])
def test_records_made_without_init_have_nothing_to_post_init(record: type) -> None:
    assert not hasattr(record, "__post_init__")
