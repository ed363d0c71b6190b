# Set-up and run targets. `make report` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
# A local CPU build of torch (this kind of machine keeps one on disk) is used when present; elsewhere pip
# picks the usual build for the platform. Override with `make TORCH_SPEC=... setup`.
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-*+cpu-*.whl))
TORCH_SPEC ?= $(or $(TORCH_WHEEL),torch)
# nbval: printed floats masked, key numbers held to their measured tolerances (stif_core/lab/references.py)
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg

.PHONY: setup demo report book test lint lock references clean

# Torch first (it stays out of the lock: a local CPU wheel here, the platform's build elsewhere), then the locked,
# hashed set (which pins torch's own dependencies too), then the package itself.
$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name stif --display-name "STIF (stif_core)" >/dev/null
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/python -m stif_core demo

report: setup
	$(BIN)/python -m stif_core report

# The notebooks as stored, as a static HTML site: reports/book/index.html (about a minute). With Chromium installed
# (Debian: apt-get install chromium), `python -m stif_core book --browser-check DIR` then opens every page and the
# search page, and fails on any console error, failed request, widget error, raw table pipes or clipped wide output.
book: setup
	$(BIN)/python -m stif_core book

test: setup
	$(BIN)/python -m pytest -q --durations=15
	STIF_NB_CHECK=$(CURDIR)/notebooks/reference_values.json $(BIN)/python -m pytest -q -p no:cacheprovider $(NBVAL) notebooks

lint: setup
	$(BIN)/ruff check stif_core tests

# Re-pin the locked set (needs the package index); torch itself stays out of it (see TORCH_SPEC).
lock: setup
	$(BIN)/pip install -q uv
	echo "torch==$(word 2,$(subst -, ,$(notdir $(TORCH_WHEEL))))" > $(VENV)/torch-constraint.txt
	$(BIN)/uv pip compile pyproject.toml --extra notebooks --extra dev --extra book --extra cluster --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --find-links /opt/wheels -c $(VENV)/torch-constraint.txt \
		--no-emit-package torch --no-header -o $(LOCK)

# The spread study: nbval's tolerances, and the stored outputs re-made (about 30 minutes on 2 cores).
references: setup
	$(BIN)/python -m stif_core references --store

clean:
	rm -rf $(VENV) .pytest_cache
