# edgestream: `make demo` and `make test` set up everything on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build on this kind of machine; on a Jetson install NVIDIA's torch wheel first and set TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= all,dev
# Exact versions of every package (a pip constraints file; `make lock` rewrites it). LOCK= installs without it.
LOCK ?= lock/requirements.lock
CONSTRAIN := $(if $(LOCK),-c $(LOCK))
LATEST_VENV ?= .venv-latest
DURATION ?= 20
PYTEST_ARGS ?=
# Keep LSL discovery on this machine for the demo and tests.
export LSLAPICFG ?= $(CURDIR)/assets/lsl_loopback.cfg

.PHONY: install demo test test-slow test-all test-latest test-install lock freeze-lock bench clean

$(VENV)/.installed: pyproject.toml setup.py $(LOCK)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(CONSTRAIN) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q $(CONSTRAIN) -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/edgestream demo --duration $(DURATION)

# pytest exits 5 when nothing was collected (e.g. every test deselected): not a failure.
test: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-slow: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m slow $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-all: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "" $(PYTEST_ARGS)

# Drift on purpose (not part of CI): the newest versions pyproject.toml's ranges allow, in a fresh
# $(LATEST_VENV) without the lock; doctor lists what differs from the lock, then the suite runs.
test-latest:
	rm -rf $(LATEST_VENV)
	$(MAKE) --no-print-directory install VENV=$(LATEST_VENV) LOCK=
	$(LATEST_VENV)/bin/edgestream doctor
	EDGESTREAM_TEST_UNLOCKED=1 $(MAKE) --no-print-directory test VENV=$(LATEST_VENV) LOCK=

# What CI checks besides the suites: a wheel installed from the lock into a fresh venv, run outside the checkout.
test-install:
	PY=$(PY) TORCH_SPEC="$(TORCH_SPEC)" .ci/install-proof

# Resolve pyproject.toml's ranges afresh (torch from TORCH_SPEC, extras EXTRAS) in a temporary venv and freeze it into $(LOCK).
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PY) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install -q --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install -q "$(TORCH_SPEC)"; \
	"$$tmp/venv/bin/python" -m pip install -q ".[$(EXTRAS)]"; \
	"$$tmp/venv/bin/python" -m pip check; \
	$(MAKE) --no-print-directory freeze-lock FREEZE_VENV="$$tmp/venv" FREEZE_FROM="a fresh venv resolving pyproject.toml's ranges, by make lock"

# Write $(LOCK) from what FREEZE_VENV has installed: pip freeze without edgestream, pip, setuptools and
# wheel, local version labels stripped (torch==2.13.0 also accepts 2.13.0+cpu and a Jetson build of 2.13.0).
FREEZE_VENV ?= $(VENV)
FREEZE_FROM ?= $(FREEZE_VENV), by make freeze-lock
freeze-lock:
	@set -e; py="$(FREEZE_VENV)/bin/python"; \
	where=$$("$$py" -c 'import platform; print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}")'); \
	{ echo "# edgestream lock: exact versions of every package \`make install\` puts in .venv (torch, extras $(EXTRAS)),"; \
	  echo "# transitive ones included. A pip constraints file: make install, CI and \`pip install -c $(LOCK) ...\`"; \
	  echo "# use it; pyproject.toml keeps ranges. Local version labels are stripped (torch==2.13.0 accepts 2.13.0+cpu)."; \
	  echo "# Not listed: edgestream, pip, setuptools, wheel. \`edgestream doctor\` reports installed versions that differ."; \
	  echo "# Frozen $$(date -u +%F) from $(FREEZE_FROM) ($$where)."; \
	  echo "# Regenerate (re-resolves every range from the package indexes): make lock"; \
	  "$$py" -m pip freeze --exclude-editable | grep -v -i -E '^#|^(edgestream|pip|setuptools|wheel) *(==|@)' \
	    | sed -E 's/^([^=]+==[^+;[:space:]]+)\+[^;[:space:]]*/\1/'; \
	} > "$(LOCK).tmp"; \
	if grep -q ' @ ' "$(LOCK).tmp"; then echo "freeze-lock: direct URL requirements cannot be locked:"; grep ' @ ' "$(LOCK).tmp"; rm "$(LOCK).tmp"; exit 1; fi; \
	mv "$(LOCK).tmp" "$(LOCK)"; echo "wrote $(LOCK): $$(grep -c '^[^#]' "$(LOCK)") packages"

bench: install
	@for b in benchmarks/*.py; do echo "# $$b"; $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) $(LATEST_VENV) .pytest_cache build dist *.egg-info
