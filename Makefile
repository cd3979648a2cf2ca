# The two commands of the README: `make book` (the main job) and `make test`.
# Both create or reuse .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PROFILE ?= cpu
STAMP  := $(VENV)/.installed

.PHONY: book test test-all book-check venv clean grid lab

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q -e '.[book,test,cluster]'
	touch $(STAMP)

venv: $(STAMP)

## Execute every chapter notebook with PROFILE (default cpu: renders the committed results) and build the HTML book.
book: $(STAMP)
	$(VENV)/bin/arlib book --profile $(PROFILE)

## The test suite (fast tests; < 10 minutes on 2 cores). The slurm tests submit jobs when
## ../shared/tools/slurm_localhost.sh's cluster is up (as in .ci/run) and skip, saying why, otherwise.
test: $(STAMP)
	$(PY) -m pytest -q -rs

## CI's extra check: build the smoke book and drive it in headless Chromium with the network off.
book-check: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "book-check: Debian's chromium could not be installed; the browser tests will skip"
	$(VENV)/bin/arlib book --profile smoke
	$(PY) -m pytest -q -m "book or browser" tests/test_book_build.py tests/test_browser.py

## The chapters as notebooks in JupyterLab, on the committed results (no training): CHAPTER=B5_smoothing opens
## that one, PROFILE=cpu-high reads another store. Working copies in lab/ (gitignored); sources stay untouched.
lab: $(STAMP)
	$(VENV)/bin/arlib lab $(CHAPTER) --profile $(PROFILE)

## Train and analyse the whole grid of a profile (resumable).
grid: $(STAMP)
	$(VENV)/bin/arlib grid --profile $(PROFILE)

clean:
	rm -rf _build book/executed
