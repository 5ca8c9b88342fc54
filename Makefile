# Two commands do all set-up: `make book` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test clean

# Create the environment on first use, and again whenever the pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints.txt --editable ".[dev]"
	@touch $@

book: $(STAMP)  ## execute every page and build the HTML book into _build/html
	$(BIN)/python tools/build_book.py

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest

clean:  ## remove the built book and its execution cache (keeps .venv)
	rm -rf _build
