# edgestream: `make demo` and `make test` set up everything on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build on this kind of machine; on a Jetson install NVIDIA's torch wheel first and set TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= all,dev
DURATION ?= 20
PYTEST_ARGS ?=
# Keep LSL discovery on this machine for the demo and tests.
export LSLAPICFG ?= $(CURDIR)/assets/lsl_loopback.cfg

.PHONY: install demo test test-slow test-all bench clean

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
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

bench: install
	@for b in benchmarks/*.py; do echo "# $$b"; $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
