# dcilab: everything a fresh Debian 12 machine (as root) needs, in two targets.
#   make demo   set up, then run the demo on topologies/two-dc.yaml
#   make test   set up, then run the unit and integration tests
# Each set-up step is skipped when already done, so a second run is quick and quiet.

SHELL       := /bin/bash
PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
TOPOLOGY    ?= topologies/two-dc.yaml
APT_PACKAGES := openvswitch-switch mininet iperf3 iputils-ping ethtool iproute2 prometheus nftables
# A stamp records what was installed; it is redone when its inputs change.
APT_STAMP   := $(VENV)/.apt-done
PIP_STAMP   := $(VENV)/.pip-done

.PHONY: demo test unit integration lint setup apt venv ovs node proto dashboards wheel clean-emulation bench

demo: setup
	$(BIN)/dcilab demo $(TOPOLOGY)

test: setup lint
	$(BIN)/pytest -q --durations=25 tests

unit: venv
	$(BIN)/pytest -q tests/unit

integration: setup
	$(BIN)/pytest -q tests/integration

setup: apt venv ovs node

# buf (protobuf linter) from npm, pinned by package-lock.json.
node: node_modules/.package-lock.json
node_modules/.package-lock.json: package-lock.json
	@# npm may come with a Node.js that is not Debian's: install Debian's only if none is there.
	@command -v npm > /dev/null || { echo "installing Debian packages: nodejs npm"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm > /dev/null; }
	@echo "installing buf (npm ci)"
	@npm ci --silent --no-audit --no-fund > /dev/null

proto: venv
	$(BIN)/python -m dcilab.api.gen

# deploy/grafana/dashboards from dcilab.metrics.dashboards (grafana-foundation-sdk)
dashboards: venv
	$(BIN)/python -m dcilab.metrics.dashboards

# ruff, and the layer contracts of the design (import-linter); both in pyproject.toml
lint: venv
	$(BIN)/ruff check controller tests tools
	$(BIN)/lint-imports

# the wheel a user installs (topologies, deploy files and the proto included)
wheel: venv
	$(BIN)/python -m build --wheel --outdir dist

apt: $(APT_STAMP)
$(APT_STAMP): Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@mkdir -p $(VENV) && touch $@

venv: $(PIP_STAMP)
$(PIP_STAMP): pyproject.toml
	@[ -x $(BIN)/python ] || { echo "creating virtualenv $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing dcilab (editable, with test extras) into $(VENV)"
	@{ $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e '.[test]'; } \
	    > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@touch $@

# Open vSwitch in userspace mode (no kernel module here); started only when not running.
ovs: apt venv
	@$(BIN)/python -m dcilab.emulation.ovs

bench: venv
	$(BIN)/dcilab bench

clean-emulation: venv
	$(BIN)/dcilab clean
