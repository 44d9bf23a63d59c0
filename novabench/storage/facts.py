"""Facts about a run that its report needs, for runs stored before they were recorded (m006).

A run made today stores them as it starts (`Suite.facts`, the engines' unsent options). For an
older run they are read from the suite text stored with it, once, when the database is migrated;
a suite text today's schema no longer reads leaves them "not recorded", never guessed.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import yaml

from novabench.config.reading import parse_suite
from novabench.config.workload import stored_load_spec
from novabench.engines.registry import unsent_options
from novabench.errors import SuiteError

RECORDED = "at run"  # facts["recorded"]: how the facts were obtained
FROM_SUITE_TEXT = "from the suite text"
NOT_RECORDED = "not recorded"


def run_facts(suite_facts: dict[str, Any]) -> dict[str, Any]:
    """The facts a run stores as it starts."""
    return {**suite_facts, "recorded": RECORDED}


def facts_from_suite_text(
    suite_text: str | None, manifest: dict[str, Any] | None
) -> dict[str, Any]:
    """The facts of an older run, from its stored suite text (and manifest, for its sweep)."""
    try:
        suite = parse_suite(suite_text or "", "stored suite")
    except (SuiteError, ValueError):
        return _not_recorded(suite_text, manifest)
    return {**suite.facts(), "recorded": FROM_SUITE_TEXT}


def _not_recorded(suite_text: str | None, manifest: dict[str, Any] | None) -> dict[str, Any]:
    spec = stored_load_spec((manifest or {}).get("load"))
    return {
        "description": _description(suite_text),
        "target_metric": None,
        "target_cv": None,
        "checks": None,
        "load": spec.facts() if spec is not None else None,
        "recorded": NOT_RECORDED,
    }


def _description(suite_text: str | None) -> str | None:
    """The suite's description, if the text is still YAML with one."""
    try:
        data = yaml.safe_load(suite_text or "")
    except yaml.YAMLError:
        return None
    description = data.get("description") if isinstance(data, dict) else None
    return description.strip() or None if isinstance(description, str) else None


def backfill(con: duckdb.DuckDBPyConnection) -> None:
    """Fill in the facts of every run stored before m006."""
    runs = con.execute("SELECT run_id, suite_text, manifest FROM runs").fetchall()
    for run_id, suite_text, manifest in runs:
        facts = facts_from_suite_text(suite_text, json.loads(manifest) if manifest else None)
        con.execute("UPDATE runs SET facts = ? WHERE run_id = ?", [json.dumps(facts), run_id])
    models = con.execute(
        "SELECT run_id, model, host, backend, options FROM models WHERE backend = 'openai'"
    ).fetchall()
    for run_id, model, host, backend, options in models:
        unsent = unsent_options(backend, json.loads(options) if options else {})
        con.execute(
            "UPDATE models SET unsent_options = ? WHERE run_id = ? AND model = ? AND host = ?",
            [unsent, run_id, model, host],
        )
