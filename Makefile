# The README's commands. Every target sets up .venv itself on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUITE  ?= suites/one_sentence.yaml
ARGS   ?=

.PHONY: bench test perf lint fix setup fake-ollama clean

$(BIN)/novabench: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "novabench needs Python 3.11+, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

setup: $(BIN)/novabench

bench: setup
	$(BIN)/novabench run $(SUITE) $(ARGS)

test: setup
	$(BIN)/python -m pytest $(ARGS)

perf: setup
	$(BIN)/python -m tests.perf $(ARGS)

lint: setup
	$(BIN)/ruff check novabench tests
	$(BIN)/ruff format --check novabench tests
	$(BIN)/mypy novabench

fix: setup
	$(BIN)/ruff check --fix novabench tests
	$(BIN)/ruff format novabench tests

# A protocol-faithful Ollama double on loopback, for trying `make bench` without Ollama.
fake-ollama: setup
	$(BIN)/python -m tests.ollama_double --port 11434 $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
