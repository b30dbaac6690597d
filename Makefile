# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
HARNESS := $(VENV)/bin/harness

.PHONY: demo test test-all venv clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

# MovieLens end to end on bundled sample data: no network, no Kaggle account.
demo: venv
	$(HARNESS) data movielens --sample --force
	$(HARNESS) train movielens
	$(HARNESS) explain movielens
	$(HARNESS) runs movielens

test: venv
	$(PY) -m pytest -q

clean:
	rm -rf harness-work
