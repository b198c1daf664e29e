# The two commands of the README: `make demo` and `make test`. Everything else is a step of those.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
VENDOR  := dashboards/builtin/static/vendor/echarts.min.js
QR_VENDOR := portal/static/vendor/jsQR.js

.PHONY: demo test test-vm install system-deps vm-deps assets lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

# Debian packages (only when root and something is missing; a developer without root installs them by hand)
system-deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  pkgs="$$(grep -v '^#' .ci/apt-packages.txt | xargs)"; missing=""; \
	  for p in $$pkgs; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi; \
	else echo "system-deps: not root; install the packages in .ci/apt-packages.txt yourself"; fi

# ECharts from the npm registry, served locally by the built-in dashboard (never from a CDN, never committed)
$(VENDOR): dashboards/builtin/package.json
	cd dashboards/builtin && npm install --no-audit --no-fund --silent
	mkdir -p $(dir $(VENDOR))
	cp dashboards/builtin/node_modules/echarts/dist/echarts.min.js $(VENDOR)

# jsQR from the npm registry: the counter page's camera scanner (served locally, never committed)
$(QR_VENDOR): portal/package.json
	cd portal && npm install --no-audit --no-fund --silent
	mkdir -p $(dir $(QR_VENDOR))
	cp portal/node_modules/jsqr/dist/jsQR.js $(QR_VENDOR)

assets: $(VENDOR) $(QR_VENDOR)

demo: install assets
	$(BIN)/keliu demo

test: system-deps install assets
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The router in a VM (tests/vm): provision.sh under systemd, hostapd on mac80211_hwsim, a phone, the sensor.
# Needs root; builds a Debian 12 image with mmdebstrap once (cached by content hash in .vm/ or $$KELIU_VM_CACHE).
VM_PKGS := qemu-system-x86 qemu-utils mmdebstrap
vm-deps:
	@missing=""; for p in $(VM_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

test-vm: vm-deps install
	$(BIN)/python -m pytest -q -p no:cacheprovider -m vm --durations=0 tests/vm

lint: install
	$(BIN)/ruff check keliu portal marketing sensor analytics router_config dashboards tests bench
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy keliu portal marketing sensor analytics router_config dashboards

bench: install
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) dashboards/builtin/node_modules $(dir $(VENDOR))
