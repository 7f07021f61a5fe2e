# Two commands matter: `make run` (a whole simulated site) and `make test` (every test).
# Both install what they need on a fresh Debian machine (as root) and are safe to re-run.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MP_STAMP := tools/mp/node_modules/.installed

.PHONY: run test test-py test-mp bench deps clean mosquitto

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || (apt-get update -qq && apt-get install -y -qq python3 python3-venv)
	@test -x $(PY) || python3 -m venv $(VENV) || (apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV))
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

# Mosquitto is the real broker the cloud-sync tests and `make run` use.
mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null)

$(MP_STAMP): tools/mp/package.json
	@command -v node >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	cd tools/mp && npm install --no-audit --no-fund --silent
	@touch $@

deps: $(STAMP) $(MP_STAMP) mosquitto

test: deps test-py test-mp

test-py: $(STAMP) mosquitto
	$(PY) tools/run_pytest.py

test-mp: $(MP_STAMP)
	node tools/mp/mp.mjs test tests/core

run: deps
	$(PY) -m host_tools.site_demo

bench: deps
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) tools/mp/node_modules .pytest_cache bench/latest.json
