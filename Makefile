# Two commands do everything on a fresh machine:
#   make demo   - create .venv, build the synthetic rain data, train + test the quick deraining recipe on it
#   make demo-haze - the same for haze: the dark channel prior and the quick dehazing recipe
#   make test   - create .venv, install the test services (visdom assets, Chromium), run ruff and pytest
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: venv demo demo-haze test clean

venv: $(STAMP)

# The requirements, then the repository itself: editable and without dependencies, so that
# `python scripts/NAME.py`, the notebook and the dcdgan-train / dcdgan-test / dcdgan-evaluate
# commands import it from any folder.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "setuptools<81" wheel
	$(PY) -m pip install -q --no-build-isolation -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# basicsr: the NIQE reference tests/test_no_reference.py compares with, imported there module
# by module, so none of its own dependencies (OpenCV, LMDB, tb-nightly) is installed.
$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation basicsr==1.4.2
	touch $(TEST_STAMP)

demo: venv
	PY=$(PY) bash scripts/demo.sh

demo-haze: venv
	PY=$(PY) bash scripts/demo_haze.sh

test: $(TEST_STAMP)
	PY=$(PY) bash scripts/setup_test_services.sh
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

# Only what this project generates: the venv, caches, the demo's data (datasets/photos,
# datasets/rain_heavy), run and results, the GPU check's smoke results and the visdom logs.
# Your own runs in checkpoints/, results in results/ and datasets in datasets/ are kept.
GENERATED := $(VENV) .pytest_cache .whl quickstart datasets/photos datasets/rain_heavy \
	checkpoints/rain_demo checkpoints/dcdgan_demo checkpoints/haze_demo checkpoints/visdom results/rain_demo \
	results/dcdgan_demo results/haze_demo \
	results/gpu_check_smoke datasets/haze datasets/photos_suite

clean:
	rm -rf $(GENERATED)
	find . -name __pycache__ -type d -not -path "./.git/*" -prune -exec rm -rf {} +
	@echo "kept: your own runs in checkpoints/, results in results/ and datasets in datasets/"
