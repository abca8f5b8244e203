# Everything a fresh machine needs is installed by these targets (apt and pip, idempotently).
VENV ?= .venv
PY := $(VENV)/bin/python
export HOKAN_SHARED_DATA ?= $(abspath ../shared/data)

.PHONY: install apt test demo clean

apt:
	@bash scripts/install-apt.sh

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: apt $(PY)
	@$(PY) -m pip install -q -e '.[test]'

test: install
	$(PY) -m pytest -q

demo: install
	@bash scripts/demo.sh

clean:
	rm -rf var out .pytest_cache .mypy_cache
