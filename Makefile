# The two commands a newcomer needs: `make run` and `make test`. Each sets itself up (so does `make ask`).
VENV := .venv
PYTHON := $(VENV)/bin/python
SHARED_MODEL := ../shared/models/qa-minilm-squad
PRODUCTION_MODEL := mrm8488/bert-tiny-5-finetuned-squadv2
# Locally, prefer the team's shared model (no download); otherwise the production default.
QA_MODEL ?= $(if $(wildcard $(SHARED_MODEL)/config.json),$(abspath $(SHARED_MODEL)),$(PRODUCTION_MODEL))
# The Lambda Runtime Interface Emulator ships inside the aws-sam-cli wheel.
SAM_CLI := aws-sam-cli==1.170.0
RIC := awslambdaric==4.2.2
APP_FILES := manage.py $(shell find qasite qa templates -type f -not -path '*/__pycache__/*')

.PHONY: run test runtime ask

$(VENV)/installed: requirements/runtime.txt requirements/dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $@

node_modules/installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The emulator, and the runtime interface client the AWS base image keeps apart from /var/task.
build/tools/installed: | $(VENV)/installed
	mkdir -p build/tools
	$(PYTHON) -m pip download --quiet --no-deps --dest build/tools $(SAM_CLI)
	$(PYTHON) -c "import glob, zipfile; zipfile.ZipFile(glob.glob('build/tools/aws_sam_cli-*.whl')[0]).extract('samcli/local/rapid/aws-lambda-rie-x86_64', 'build/tools')"
	chmod +x build/tools/samcli/local/rapid/aws-lambda-rie-x86_64
	$(PYTHON) -m pip install --quiet --no-warn-conflicts --target build/tools/ric $(RIC)
	touch $@

# The Lambda image's /var/task, built outside Docker by the Dockerfile's own scripts.
build/runtime/installed: requirements/runtime.txt docker/build-runtime.sh docker/assemble.sh $(APP_FILES) | $(VENV)/installed
	rm -rf build/runtime
	PYTHON=$(PYTHON) docker/build-runtime.sh build/runtime
	PYTHON=$(PYTHON) docker/assemble.sh build/runtime $(QA_MODEL)
	touch $@

runtime: build/runtime/installed

run: $(VENV)/installed
	DJANGO_DEBUG=1 QA_MODEL=$(QA_MODEL) $(PYTHON) manage.py runserver 127.0.0.1:8000

# One question from the shell with the model `make run` serves:
#   make ask QUESTION="What is my name?" CONTEXT="I'm Kit-Ho Mak." [ASK="--top-k 3 --allow-no-answer"]
# Without CONTEXT the context is read from standard input. The texts reach the command verbatim:
# quoted for the shell, never expanded by make (a "$" stays a "$").
quote = '$(subst ','\'',$(value $(1)))'
unexport QUESTION CONTEXT
ask: $(VENV)/installed
	@QA_MODEL=$(QA_MODEL) $(PYTHON) manage.py ask $(call quote,QUESTION) $(if $(value CONTEXT),--context $(call quote,CONTEXT)) $(ASK)

test: $(VENV)/installed node_modules/installed build/tools/installed build/runtime/installed
	$(PYTHON) -m pytest
