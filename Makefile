# Two commands do all the set-up: `make run` (the chat UI) and `make test` (the test suite).
# Each creates the virtual environment .venv from the pinned requirements when it is missing or
# older than requirements.txt / constraints.txt.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7860

# The shared data folder beside the checkout, unless the caller names another.
CRS_DATA_DIR ?= $(abspath ../shared/data)
export CRS_DATA_DIR
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: venv run test stats clean-venv

$(STAMP): requirements.txt constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt -c constraints.txt
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python app.py --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

stats: $(STAMP)
	$(VENV)/bin/python -m crs.data stats
	$(VENV)/bin/python -m crs.data.kg_stats

clean-venv:
	rm -rf $(VENV)
