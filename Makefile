# omigen's front door: `make demo` and `make test` each set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
SOURCES := pyproject.toml scripts/install.sh $(wildcard plugins/*/pyproject.toml)

.PHONY: install install-dev demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python $(SOURCES)
	VENV=$(VENV) sh scripts/install.sh
	touch $@

$(VENV)/.installed-dev: $(BIN)/python $(SOURCES) $(wildcard examples/*/pyproject.toml)
	VENV=$(VENV) sh scripts/install.sh --dev
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/omigen run expression

# pytest exits 5 when it collects no test; that is not a failure of the set-up.
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

clean:
	rm -rf $(VENV) .pytest_cache
