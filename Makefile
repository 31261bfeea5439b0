# Every target creates .venv and installs the project on first use; later runs skip the install
# until pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CONFIG ?= configs/gan.yaml
DATA_DIR ?=
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install train classifier test test-all lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: CONFIG=$(CONFIG) DATA_DIR=<MNIST root, default data/> ARGS='extra CLI overrides'"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $@

install: $(INSTALLED) ## create .venv and install duet with its dev tools

train: $(INSTALLED) ## train CONFIG (default: the vanilla GAN) on MNIST in DATA_DIR
	$(VENV)/bin/duet fit --config $(CONFIG) $(if $(DATA_DIR),--data.data_dir $(DATA_DIR)) $(ARGS)

classifier: $(INSTALLED) ## train the MNIST classifier that FID/KID/IS use (checkpoints/mnist_classifier.ckpt)
	$(VENV)/bin/duet fit --config configs/mnist_classifier.yaml $(if $(DATA_DIR),--data.data_dir $(DATA_DIR)) $(ARGS)
	$(VENV)/bin/duet test --config configs/mnist_classifier.yaml $(if $(DATA_DIR),--data.data_dir $(DATA_DIR)) \
		--ckpt_path checkpoints/mnist_classifier.ckpt

test: $(INSTALLED) ## run the fast test suite
	$(PY) -m pytest -q

test-all: $(INSTALLED) ## run every test, the slow ones too
	$(PY) -m pytest -q -m ""

lint: $(INSTALLED) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALLED) ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## remove run outputs (keeps .venv and data)
	rm -rf runs lightning_logs wandb
