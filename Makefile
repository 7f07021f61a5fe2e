# Two commands matter: `make run` (a whole simulated site) and `make test` (every test).
# Both install what they need on a fresh Debian machine (as root) and are safe to re-run.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MP_STAMP := tools/mp/node_modules/.installed

FAST_STAMP := $(VENV)/.fastcore
# The core's hot modules, compiled with Cython from their own .py files (edge/compiled_core.py).
FAST_SRC := setup.py $(wildcard edge/core/*.pxd) $(wildcard edge/core/alloc*.py)

.PHONY: run test test-py test-mp bench deps clean mosquitto fastcore chromium systemd-tools

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || (apt-get update -qq && apt-get install -y -qq python3 python3-venv)
	@command -v cc >/dev/null || (apt-get update -qq && apt-get install -y -qq gcc)
	@python3 -c "import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
		|| (apt-get update -qq && apt-get install -y -qq python3-dev)
	@test -x $(PY) || python3 -m venv $(VENV) || (apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV))
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

# Rebuilt whenever a compiled module's source changes: a stale one would run old code.
$(FAST_STAMP): $(STAMP) $(FAST_SRC)
	$(PY) setup.py -q build_ext --inplace 2>&1 | grep -v -i -e beta -e 'warnings.warn' || true
	$(PY) -m edge.compiled_core --require
	@touch $@

fastcore: $(FAST_STAMP)

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

deps: $(STAMP) $(FAST_STAMP) $(MP_STAMP) $(UMQTT) mosquitto

test: deps test-py test-mp

# Everything against the compiled core, then the core's own tests against its .py modules.
test-py: $(STAMP) $(FAST_STAMP) $(UMQTT) mosquitto chromium systemd-tools
	$(PY) tools/run_pytest.py
	EDGE_PURE_CORE=1 $(PY) tools/run_pytest.py tests/core tests/property

test-mp: $(MP_STAMP)
	node tools/mp/mp.mjs test tests/core
	node tools/mp/mp.mjs test tests/node

run: deps
	$(PY) -m host_tools.site_demo

bench: deps
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) tools/mp/node_modules .pytest_cache bench/latest.json build edge/core/*.c edge/core/*.so
