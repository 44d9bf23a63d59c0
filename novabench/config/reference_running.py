"""The last part of the suite reference (suites/README.md): running a suite in detail, what
`novabench run` prints, locks, stores and refuses. Hand-written; reference.py appends it."""

# A backslash at the end of a line joins it to the next: long output lines stay one line.
RUNNING = """\
## Running a suite

The [README](../README.md) has the commands and the exit codes in short; here is what they print.

### Exit codes and their lines

These are `novabench run`'s (0: every request succeeded; 2: the suite, or `--baseline`, is
invalid). The other commands use the same codes: 0, 1 for an error such as an unknown run or a
database that cannot be opened, 2 for bad usage, 6 and 130.

- **1**: some requests failed (a missing model, a server error, a timeout); the rest were
  measured and stored. A model that the host does not have fails its own rows (`model 'x' not
  found on http://...`) while the other models still run. In a suite with several hosts, an
  unreachable host fails only its own models' rows; exit code 3 is for when no host answers.
  A server that dies or restarts mid-run fails only the requests it was serving or is sent
  while down, each with its reason (`connection lost after 5 chunks: ...`, `cannot reach Ollama
  at URL (connection refused)`); the run goes on and ends `complete` with exit code 1.
- **3**: the host cannot be reached (`cannot reach Ollama at URL (connection refused): start it
  with 'ollama serve' or set OLLAMA_HOST`) or did not answer its version or model list as Ollama
  does (`URL/api/tags answered something that is not what Ollama answers: models[0].size: 'big'
  is not a whole number`, `URL/api/version: server answered with broken HTTP (...)`,
  `URL/api/version: connected, no answer within timeout_s=3`); nothing is written but the
  suite's lock file. A broken `/api/show` or `/api/ps` answer costs only its facts (context
  length, GPU residency): a `warning:` line (a `warning` event with `--log-json`, nothing with
  `--quiet`), and the run goes on; `/api/show` warnings are also kept in the run's manifest
  (`server_warnings`).
- **4**: with `--baseline ... --fail-on-regression PCT`, a significant regression larger than
  PCT % (takes precedence over 1; failed requests are still listed).
- **5**: `Error: suite 'NAME' is already running (pid N since TIME, lock FILE): not starting`;
  nothing is run or written.
- **6**: something novabench must write cannot be. During a run, the database stopped taking
  results (a full disk, a lock held by another process past `NOVABENCH_DB_LOCK_TIMEOUT_S`): the
  run stopped, and what the database lacks is in the spill file the `Error:` line names, for
  `novabench import`. Or a read-only folder, a full disk, an `--out` that is not a folder: the
  lock file in `<db folder>/locks/` (nothing is run), a report page, an export. One line names
  the file, why, and what to do, e.g. `Error: cannot write the report
  reports/runs/RUN_ID.html (No space left on device): free some space there, or give --out a
  folder on another disk; the results are kept (run RUN_ID in reports/novabench.duckdb):
  'novabench report RUN_ID --db reports/novabench.duckdb --out DIR' writes the report`. Results
  already stored stay stored. Takes precedence over 1; 4 and 130 take precedence over it (its
  line is still printed).
- **130**: interrupted (Ctrl-C or SIGTERM): `Error: interrupted: N requests stored in run
  RUN_ID`; what finished is stored and reported. Before the run starts, and in every other
  command, at any moment (even while novabench is still starting): `Error: interrupted`.

### Quiet and JSON output

`--quiet` prints errors only, all on stderr, and nothing at all when the run succeeds: the
`failed: MODEL PROMPT: reason` lines (the first 5, then a count), the `Error: ...` lines, and with
exit 4 one `Error: regression: ...` line per regression beyond the gate. No summary table, no
comparison, no `report:` line; the reports are still written (`index.html` links them).

`--log-json` writes one JSON object per line on stderr instead of the log lines, each with `ts`
(UTC, ISO 8601) and `event`: `run_started` (run_id, planned_requests, plan), `request_finished`
(mode, model, host, prompt_id, repetition, warmup, cold, ok, error, ttft_ms, e2e_ms,
eval_tokens_per_s, output_tokens; never the model's output), `phase_finished` (mode, wall_s),
`level_finished` (load mode), `warning`, `run_finished` (run_id, status, exit_code, requests,
failed, report) and `error` (message, exit_code) in place of every `Error:` line. Strings are
JSON-escaped, so a model name cannot break a line. stdout (summary table, report path) is
unchanged. With `--quiet` too, only what reports an error is written: failed `request_finished`
events, `error` events and `run_finished` when the exit code is not 0; a success writes nothing.
Mistakes in the command line itself (an unknown option) are still click's usage text, exit 2.

```
{"ts": "2026-03-01T03:17:04.512Z", "event": "request_finished", "mode": "sequential", \
"model": "llama3.2", "host": "http://127.0.0.1:11434", "prompt_id": "p1", "repetition": 0, \
"warmup": false, "cold": false, "ok": true, "error": null, "ttft_ms": 182.4, "e2e_ms": 1204.9, \
"eval_tokens_per_s": 41.3, "output_tokens": 47}
```

### The lock file

Before anything is run, `novabench run` takes an exclusive `flock` on `<db folder>/locks/<suite
name>.lock` (`reports/locks/` by default; characters other than letters, digits, `.`, `_` and `-`
become `_`, plus a short hash of the real name, so a name like `../x` stays inside the folder).
The file holds the holder's pid, host, start time and run id. If it is held, the run says who
holds it and exits 5 (a slow run overtaken by the next cron slot). The lock is released on every
exit, and the kernel releases it when the process dies, even by `kill -9`: there is never a stale
lock to delete (the file itself stays; it is only a lock while a process holds it). Different
suites run at once, sharing the database. The lock is local to the machine (and to filesystems
where `flock` works; not NFS).

### Several runs at once

DuckDB lets one process at a time open a database file, so novabench opens it only for each
write (results are written in batches) or query and closes it right after. Runs of different
suites that overlap (a second run of the same suite exits 5 instead, see [the lock
file](#the-lock-file)) and `report`, `history`, `runs` or `export` commands run meanwhile take
turns: when another process holds the file, novabench retries with a growing, jittered pause
(10 ms doubling to 500 ms). After 60 s of waiting it stops with `Error: reports/novabench.duckdb
is locked by another process (pid 1234) for more than 60 s: ...`; set
`NOVABENCH_DB_LOCK_TIMEOUT_S` (seconds) to wait longer or shorter. Only opening the file is
retried, and each write is one transaction, so no row is written twice or lost.

### Interrupts and crashes

Every finished request is written twice: within 20 ms to the run's journal, an NDJSON file beside
the database (`reports/novabench.duckdb.journal/RUN_ID/`), and then to the database, from two
background threads, so that neither a write nor a wait for the database file ever delays the
next request's timing. The run deletes its journal once the database holds everything. Ctrl-C or
SIGTERM during `novabench run` cancels the requests in flight, writes what finished, marks the
run `interrupted`, writes its report and exits 130; a second Ctrl-C exits at once with
`Error: interrupted again: stopping at once; what is stored stays stored` (what is already in the
database or the journal stays there, the report is not written). Every other command, and `run`
before its run has started (while it asks the servers, or waits for a database file another
process holds), stops promptly on Ctrl-C or SIGTERM with `Error: interrupted` and exit 130; a
report page is written to a temporary file and renamed, so a stopped command leaves no half page.

A run killed outright (`kill -9`, a crash) keeps every request that finished more than about
20 ms before, at any request rate: it cannot mark itself, so the next novabench command that
opens the database (`run`, `report`, `history`, `runs`, `compare`, `export`) adds what the
journal holds and the database lacks, and marks the run `aborted` once its process is gone (runs
started on other machines are left alone). Measured with `python -m tests.robustness.killbench`
(the figures are in [tests/README.md](../tests/README.md#kill--9-at-any-rate)). A power loss can
also lose what the operating system had not yet written to disk.

### Storage failures

Values a server sends that the database cannot hold (a count beyond its 32-bit column, a negative
or non-finite duration, text with invalid Unicode) never stop a run: the request becomes an error
row naming the field and the value as sent (`server sent values that cannot be stored:
eval_count=1e+30 (not a token count from 0 to 2147483647)`), and a row that the database still
refuses is stored on its own as an error row, never taking the others with it. When the database
itself stops taking writes (a full disk, a lock held by another process past
`NOVABENCH_DB_LOCK_TIMEOUT_S`, an I/O error), the run stops at once: no new request is sent,
everything the database does not hold is written to a spill file beside it (else in the
temporary folder, else the home folder), and `novabench run` exits 6 with one line that names it:

```
Error: cannot store results of run 20261201T031700Z-3fa1: reports/novabench.duckdb: no space \
left on its disk (...); the run stopped; 58 results the database does not hold are in \
reports/novabench.spill-20261201T031700Z-3fa1.ndjson: 'novabench import \
reports/novabench.spill-20261201T031700Z-3fa1.ndjson' adds them once it can be written
```

`novabench import FILE` adds them (importing twice adds nothing twice). A database file that is
not a novabench history (a DuckDB file with tables of its own) is refused and left untouched; a
damaged one (DuckDB's block checksums) is refused before a run is added to it, as far as the
blocks a run touches can tell: damage elsewhere in a large file is found when that part is read,
and every command then says so in one line. `connect_timeout_s`, `first_token_timeout_s` and
`timeout_s` bound every request, so nothing waits forever (the embedded `llamacpp` engine
honours only `timeout_s`).

### The database and the reports

- `reports/novabench.duckdb` (change with `--db`): the history. Tables `runs` (id, UTC times,
  status `running`/`complete`/`interrupted`/`aborted`, suite name, path, text and sha256, host,
  Ollama and novabench versions, system info), `models` (per run: digest, size, family, parameter
  size, quantization, effective options), `prompts`, `results` (one row per request, inserted as
  it finishes), `phases` (wall time of each mode), `samples` (resource samples), `load_levels`
  (each load level's own facts), `repetition_stops` (why repetition stopped), and
  `schema_migrations` (numbered migrations). Made from those when a run ends, and what the
  history page reads instead of every request: `run_summaries` (per run, mode, model, host and
  prompt, and over every prompt: counts, medians and 95th percentiles of the figures),
  `run_changes` (each run's significant changes against the previous comparable run),
  `level_summaries` (each load level's figures) and `summary_state`; `novabench history
  --rebuild-summaries` makes them again from the raw results, which stay the source of truth.
- `reports/runs/<run_id>.html`, `reports/history.html`, `reports/index.html` (next to the
  database; change with `--out`). Each is one file with Plotly inlined: no network access needed
  to open it. Everything under `reports/` is git-ignored. Beyond 100 runs the index lists the
  newest 100 and a table of months by suite; `reports/index/<YYYY-MM>.html` lists each month's
  runs by suite (after a run only its own month's page is rewritten). A run page of thousands of
  requests draws a fixed sample of them in each chart (each model's first, last, lowest and
  highest kept) and says so beside the chart; its tables and figures count every request.
- `reports/novabench.duckdb.history-cache/` (beside the database): each suite's history charts
  as last drawn, with the state of its runs they were drawn from. A run changes its own suite
  only, so the history page written after it draws that suite again (its lines thinned in
  DuckDB to the page's stated rule: a line's points, never its runs, reach Python) and takes the
  others from here. Safe to delete: every suite is drawn again. Compiled page templates are kept
  in jinja2's per-user folder of the temporary directory (`_jinja2-cache-<uid>`, mode 0700).

A database written by an earlier novabench is migrated forward in place the first time a newer
novabench opens it, once. Before migrating, it copies the file next to itself as
`novabench.v<old schema version>-backup-<UTC time>.duckdb` (e.g.
`novabench.v1-backup-20261127T104500Z.duckdb`); delete the copy once you no longer need to go
back. A database newer than the installed novabench understands is refused: upgrade novabench.

### Pruning old runs

`novabench prune` deletes old runs; without `--yes` it only lists them (run id, suite, start,
status, request rows) with a total, and changes nothing. It needs a rule, and refuses to run
without one:

- `--older-than AGE`: runs started more than AGE ago, in whole hours, days or weeks (`36h`,
  `90d`, `2w`);
- `--keep-last N`: all but the N newest runs of each suite (by start time);
- both: a run goes only if both say so (older than AGE *and* not among its suite's last N);
- `--suite NAME`: only that suite's runs.

With `--yes` the runs' rows go from every table keyed by a run id, in one transaction. DuckDB
frees a block only once every row stored in it is deleted, so the rows left in blocks at most half
full are moved to the table's end in the same transaction (never more rows than were deleted),
and a checkpoint frees the emptied blocks: the file shrinks when they are at its end, and the next
runs reuse them otherwise. The last line gives the space in use and the file's size, before and
after. Their pages
(`reports/runs/<run_id>.html`, or `--out`) are deleted and `history.html` and `index.html`
rewritten without them; a page that is a link loses the link, never what it points to, and a
`runs` folder that leads outside the reports folder is left alone (a `note:` line says so).
Comparison pages (`compare/`) are kept.

A run in progress is never pruned, nor counted among the last N: a run whose status is `running`
is kept, with a `kept: run ... is still running` line. As every command does, prune first marks
`aborted` the runs of this machine whose process is gone (killed, crashed); those are then old
runs like any other. A `running` run started on another machine sharing the database is kept
until a command on that machine marks it (its process cannot be seen from here). The suite lock
is not taken: taking it even for a moment would make a run starting at that instant exit 5.

`--keep-summaries` deletes only the raw rows (`results`, one per request, and `samples`); the
run's row, its models, prompts, phases, levels and what the history keeps of it (`run_summaries`,
`run_changes`, `level_summaries`, made first from the raw rows if they are missing) stay, so its
history lines and its page do. `runs` lists it as `pruned` (`runs.pruned_at`) with the counts its
summaries keep; `report RUN_ID` on it says in one line that its raw rows were pruned; `history`
writes no new page for it, and `history --rebuild-summaries` leaves its summaries as they are. A
later prune without `--keep-summaries` removes it whole. Such a run is never a baseline (it has
no requests to compare with), and `novabench import` refuses a spill file of it (importing would
bring back part of the rows that were removed).
"""
