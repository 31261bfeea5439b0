# Every target creates .venv and installs the project on first use; later runs skip the install
# until pyproject.toml changes. The install is editable in setuptools' strict mode: a tree of
# links (build/__editable__.*) that type checkers and IDEs follow like any package folder. A file
# added to or removed from a package folder needs new links; LINKED redoes them (seconds).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
LINKED := $(VENV)/.linked
PACKAGE_DIRS := lightning_modules lightning_modules/networks datamodules callbacks scripts \
	configs $(wildcard configs/*/)
EDITABLE := --config-settings editable_mode=strict
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
	$(PY) -m pip install -e ".[dev]" $(EDITABLE)
	touch $@

$(LINKED): $(INSTALLED) $(PACKAGE_DIRS)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . $(EDITABLE)
	touch $@

install: $(LINKED) ## create .venv and install duet with its dev tools

train: $(LINKED) ## train CONFIG (default: the vanilla GAN) on MNIST in DATA_DIR
	$(VENV)/bin/duet fit --config $(CONFIG) $(if $(DATA_DIR),--data.data_dir $(DATA_DIR)) $(ARGS)

classifier: $(LINKED) ## train the MNIST classifier that FID/KID/IS use (checkpoints/mnist_classifier.ckpt)
	$(VENV)/bin/duet fit --config configs/mnist_classifier.yaml $(if $(DATA_DIR),--data.data_dir $(DATA_DIR)) $(ARGS)
	$(VENV)/bin/duet test --config configs/mnist_classifier.yaml $(if $(DATA_DIR),--data.data_dir $(DATA_DIR)) \
		--ckpt_path checkpoints/mnist_classifier.ckpt

test: $(LINKED) ## run the fast test suite
	$(PY) -m pytest -q

test-all: $(LINKED) ## run every test, the slow ones too
	$(PY) -m pytest -q -m ""

lint: $(LINKED) ## ruff lint and format check, and the mypy type check of the package
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy -p duet.lightning_modules -p duet.datamodules -p duet.callbacks -p duet.scripts

format: $(LINKED) ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## remove run outputs (keeps .venv and data)
	rm -rf runs lightning_logs wandb
