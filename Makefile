# Two set-up commands, each works on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The benchmarks' environment: `pip install shoulders` as an image user gets it, no extras (the text
# extra's keras-hub pulls the full TensorFlow build beside tensorflow-cpu, ~3 s slower to import).
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo test install clean bench compare

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,text,jax,onnx,ray,spark]'
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e .
	touch $(BENCH_STAMP)

install: $(STAMP)

# The main job, offline: fine-tune EfficientNet-Lite0 (bundled ImageNet weights) on scikit-learn's digits.
demo: $(STAMP)
	$(BIN)/shoulders train --dataset digits --image-size 96

compare: $(STAMP)
	$(BIN)/shoulders compare ../shared/datasets/hymenoptera --seeds 3

bench: $(STAMP) $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/feature_throughput.py
	$(BENCH_VENV)/bin/python bench/phase1_speed.py $(BENCH_ARGS)
	$(BIN)/python bench/text_phase2.py

# Two workers (idle ones steal queued tests): JAX compiles, process start-ups and servers' waits overlap.
# On 2 cores the whole suite took 32 min serially and 16 min this way (with a few tests also trimmed).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

clean:
	rm -rf $(VENV) $(BENCH_VENV) build src/*.egg-info .pytest_cache
