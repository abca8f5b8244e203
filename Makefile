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

install: apt $(PY) node_modules/.package-lock.json
	@$(PY) -m pip install -q -e '.[test]'

# Node tools the tests start (Azurite, package.json); npm ci runs again only when the lock file changes.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

test: install
	$(PY) -m pytest -q

demo: install
	@bash scripts/demo.sh

clean:
	rm -rf var out .pytest_cache .mypy_cache
