# make run: the whole system on this machine.  make test: the whole suite.
#
# Two install stamps, each named after a checksum of the files it installed from, so an edited
# requirements file means a reinstall:
#   .installed-run-<sum of requirements.txt>                      runtime packages only (make run)
#   .installed-dev-<sum of requirements.txt requirements-dev.txt> runtime + test packages (make test)
# `make test` builds the run stamp first and adds the test packages on top; `make run` after
# `make test` installs nothing more; `make run` never installs a test package.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
sum     = $(shell cat $(1) | cksum | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.installed-run-$(call sum,requirements.txt)
DEV_STAMP := $(VENV)/.installed-dev-$(call sum,requirements.txt requirements-dev.txt)

.PHONY: install install-dev run test chaos clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-run-* && touch $(RUN_STAMP)

$(DEV_STAMP): requirements.txt requirements-dev.txt $(RUN_STAMP)
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-dev-* && touch $(DEV_STAMP)

install: $(RUN_STAMP)

install-dev: $(DEV_STAMP)

# Ctrl-C in the terminal reaches only scheduler.devrun (it takes the terminal's foreground), so make
# sees it exit 0 instead of dying of the signal itself.
run: install
	$(BIN)/python -m scheduler.devrun

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# make chaos: the long chaos test (tests/chaos/, README "Failure and recovery"): CHAOS_SECONDS of random
# faults per database, once per seed in SEEDS (make chaos SEEDS="1 2 3"); every seed runs, the figures
# of each are printed, and the target fails if any seed failed.
SEEDS         ?= 20261130
CHAOS_SECONDS ?= 240
chaos: install-dev
	@status=0; for seed in $(SEEDS); do \
	  CHIME_CHAOS_SEED=$$seed CHIME_CHAOS_SECONDS=$(CHAOS_SECONDS) \
	    $(BIN)/python -m pytest tests/chaos/test_chaos.py -n 0 -s $(PYTEST_ARGS) || status=1; \
	done; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
