# The two commands a newcomer needs: `make run` and `make test`. Each sets itself up.
VENV := .venv
PYTHON := $(VENV)/bin/python
SHARED_MODEL := ../shared/models/qa-minilm-squad
# Locally, prefer the team's shared model (no download); otherwise the production default.
QA_MODEL ?= $(if $(wildcard $(SHARED_MODEL)/config.json),$(abspath $(SHARED_MODEL)),mrm8488/bert-tiny-5-finetuned-squadv2)

.PHONY: run test

$(VENV)/installed: requirements/runtime.txt requirements/dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $@

run: $(VENV)/installed
	DJANGO_DEBUG=1 QA_MODEL=$(QA_MODEL) $(PYTHON) manage.py runserver 127.0.0.1:8000

test: $(VENV)/installed
	$(PYTHON) -m pytest
