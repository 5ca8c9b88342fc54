# Two commands do all set-up: `make book` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book student page test bench clean

# The Bayesian pages sample with nutpie, which compiles PyMC models through numba and
# never calls PyTensor's C BLAS. Saying so skips PyTensor's search for a system BLAS (slow,
# and absent from a pip-only machine) and the warning it prints when none is found.
export PYTENSOR_FLAGS ?= blas__ldflags=

# Create the environment on first use, and again whenever the pins change; the set-up time
# goes into the build report.
$(STAMP): pyproject.toml constraints.txt
	@mkdir -p _build
	start=$$(date +%s) && \
	{ test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } && \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints.txt --editable ".[dev]" && \
	echo $$(( $$(date +%s) - start )) > _build/.environment-seconds
	@touch $@

book: $(STAMP)  ## execute every page and build both editions into _build/html/{en,zh}
	$(BIN)/python tools/build_book.py

student: $(STAMP)  ## the student edition, without solutions, into _build/student/_build/html
	$(BIN)/python tools/build_book.py --student

page: $(STAMP)  ## execute one page again and rebuild: make page PAGE=book/data.md
	@test -n "$(PAGE)" || { echo "usage: make page PAGE=book/<page>.md" >&2; exit 2; }
	$(BIN)/python tools/build_book.py --rerun $(PAGE)

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest

bench: $(STAMP)  ## speed against peers, printed as ratios in one run
	$(BIN)/pip install -q -c constraints.txt -e ".[bench]"
	$(BIN)/python benchmarks/bench_lmm.py
	$(BIN)/python benchmarks/bench_glmm.py
	$(BIN)/python benchmarks/bench_nlmm.py
	$(BIN)/python benchmarks/bench_corpus.py
	$(BIN)/python benchmarks/bench_inference.py
	$(BIN)/python benchmarks/bench_import.py

clean:  ## remove the built book and its execution cache (keeps .venv)
	rm -rf _build
