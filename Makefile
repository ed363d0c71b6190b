# Set-up and run targets. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A local CPU build of torch (this kind of machine keeps one on disk) is used when present; elsewhere pip
# picks the usual build for the platform. Override with `make TORCH_SPEC=... setup`.
TORCH_SPEC ?= $(or $(firstword $(wildcard /opt/wheels/torch-*+cpu-*.whl)),torch)

.PHONY: setup demo report test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[notebooks,dev]"
	$(BIN)/python -m ipykernel install --user --name stif --display-name "STIF (stif_core)" >/dev/null
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/python -m stif_core demo

report: setup
	$(BIN)/python -m stif_core report

test: setup
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbval notebooks

lint: setup
	$(BIN)/ruff check stif_core tests

clean:
	rm -rf $(VENV) .pytest_cache
