# Two commands matter: `make run` (a whole simulated site) and `make test` (every test).
# Both install what they need on a fresh Debian machine (as root) and are safe to re-run.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MP_STAMP := tools/mp/node_modules/.installed

# Until 2026-12 the allocation was also compiled with Cython (docs/architecture.md, "One
# core, pure Python"); a module left from that build would win the import over its .py
# source and run old code, so every target that runs Python deletes such leftovers.
LEFTOVERS := $(wildcard edge/core/*.so edge/core/*.pyd edge/core/*.c $(VENV)/.fastcore)

.PHONY: run test test-py test-mp bench deps clean mosquitto chromium systemd-tools no-compiled-core

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || (apt-get update -qq && apt-get install -y -qq python3 python3-venv)
	@test -x $(PY) || python3 -m venv $(VENV) || (apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV))
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

no-compiled-core:
	@$(if $(LEFTOVERS),rm -f $(LEFTOVERS) && echo "removed the old compiled core: $(LEFTOVERS)",true)

# micropython-lib's umqtt.simple, whose real code the meter node's CPython tests run.
UMQTT := $(VENV)/mp-lib/umqtt/simple.py
$(UMQTT): $(STAMP) tools/fetch_umqtt.py
	$(PY) tools/fetch_umqtt.py 2>&1 | grep -v 'is ignored' || true
	@test -f $@

# Mosquitto is the real broker the cloud-sync tests and `make run` use.
mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null)

# Debian's headless Chromium runs the live page's browser test (tests/web); no browser download.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

# systemd-analyze checks the unit `edge install` writes; systemd-sysusers creates its user.
systemd-tools:
	@command -v systemd-analyze >/dev/null 2>&1 && command -v systemd-sysusers >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null)

$(MP_STAMP): tools/mp/package.json
	@command -v node >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	cd tools/mp && npm install --no-audit --no-fund --silent
	@touch $@

deps: $(STAMP) no-compiled-core $(MP_STAMP) $(UMQTT) mosquitto

test: deps test-py test-mp

# `make test` is the gate (CI, before a push): its property tests draw the same cases for a
# commit (profile ci, tests/conftest.py); a plain pytest run explores (profile dev).
test-py: $(STAMP) no-compiled-core $(UMQTT) mosquitto chromium systemd-tools
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} $(PY) tools/run_pytest.py

test-mp: $(MP_STAMP)
	node tools/mp/mp.mjs test tests/core
	node tools/mp/mp.mjs test tests/node

run: deps
	$(PY) -m host_tools.site_demo

bench: deps
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) tools/mp/node_modules .pytest_cache bench/latest.json build $(LEFTOVERS)
