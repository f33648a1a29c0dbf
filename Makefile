# The two commands a newcomer needs: `make run` and `make test`. Each sets itself up (so does `make ask`).
VENV := .venv
PYTHON := $(VENV)/bin/python
SHARED_MODEL := ../shared/models/qa-minilm-squad
# The model: QA_MODEL as given (on the command line or in the environment). Empty: the production
# model at its pinned hub commit (qasite/settings.py declares both); another hub model takes
# QA_MODEL=<hub id> QA_MODEL_REVISION=<commit>, so that a rebuild bakes the same weights. The
# settings read both from the environment (MODEL_ENV).
# Not given: for local work (run, ask, test, runtime...) the team's shared model when it is there
# (no download); but a deploy artefact (zip) carries only a model someone chose, so a zip goal
# bakes the production model, whatever else the command line asks for.
DEPLOY_GOALS := zip build/lambda-%.zip
ifeq ($(origin QA_MODEL),undefined)
ifeq ($(filter $(DEPLOY_GOALS),$(MAKECMDGOALS)),)
QA_MODEL := $(if $(wildcard $(SHARED_MODEL)/config.json),$(abspath $(SHARED_MODEL)))
else
QA_MODEL :=
endif
endif
QA_MODEL_REVISION ?=
# QA_QUANTIZE=int8: bake_model --quantize int8 (the graph served in int8, if it passes the quality
# gate; docs/benchmark.md, "int8"). Empty: float32.
QA_QUANTIZE ?=
# A make variable's text as one shell word, never expanded by make (a "$" or a quote in a path
# or a question stays as typed): $(call quote,NAME).
quote = '$(subst ','\'',$(value $(1)))'
MODEL_ENV = QA_MODEL=$(call quote,QA_MODEL) QA_MODEL_REVISION=$(call quote,QA_MODEL_REVISION)
# The Lambda Runtime Interface Emulator ships inside the aws-sam-cli wheel.
SAM_CLI := aws-sam-cli==1.170.0
RIC := awslambdaric==4.2.2
APP_FILES := manage.py $(shell find qasite qa templates -type f -not -path '*/__pycache__/*')
# Lambda's CPU, as Lambda names it (x86_64 or arm64): the runtime tree and the zip are built for
# it, and for Lambda's Python (3.12), wherever they are built. Without that Python, `make test`
# builds no tree, and the tests that need one skip, saying why.
ARCH ?= x86_64
# TRACING=1 adds the X-Ray SDK (requirements/tracing.lock) for a deploy with tracing=true, in a
# tree and a zip of their own (build/runtime-tracing, build/lambda-x86_64-tracing.zip).
TRACING ?= 0
LAMBDA_PYTHON := $(shell docker/lambda-python.sh 2>/dev/null)
SUFFIX := $(if $(filter-out x86_64,$(ARCH)),-$(ARCH))$(if $(filter 1,$(TRACING)),-tracing)
RUNTIME := build/runtime$(SUFFIX)
ZIP := build/lambda-$(ARCH)$(if $(filter 1,$(TRACING)),-tracing).zip
TRACING_RUNTIME := build/runtime$(if $(filter-out x86_64,$(ARCH)),-$(ARCH))-tracing

.PHONY: run test runtime zip ask lock FORCE

# torch's CPU build (requirements/torch.txt), from PyTorch's CPU wheel index alone and first, as
# the Dockerfile takes it; then the rest, torch's own dependencies included, from pip's usual
# index (PyPI), where torch is then already there. Where that index does not answer, pip finds
# the pinned wheel only among its local wheels (find-links), and otherwise fails, downloading no
# other build: one retry and a 5 s socket timeout, so that an unreachable index costs a second
# where its name does not resolve (pip's default five retries: 10 s), 10 s at most where it
# does not answer. TORCH_INDEX: a mirror of that index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_INSTALL = $(PYTHON) -m pip install --quiet --disable-pip-version-check

$(VENV)/installed: requirements/runtime.txt requirements/torch.txt requirements/build.txt requirements/dev.txt
	python3 -m venv $(VENV)
	$(PIP_INSTALL) --no-deps --index-url $(TORCH_INDEX) --retries 1 --timeout 5 -r requirements/torch.txt
	$(PIP_INSTALL) -r requirements/dev.txt
	touch $@

node_modules/installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The emulator.
build/tools/installed: | $(VENV)/installed
	mkdir -p build/tools
	$(PYTHON) -m pip download --quiet --no-deps --dest build/tools $(SAM_CLI)
	$(PYTHON) -c "import glob, zipfile; zipfile.ZipFile(glob.glob('build/tools/aws_sam_cli-*.whl')[0]).extract('samcli/local/rapid/aws-lambda-rie-x86_64', 'build/tools')"
	chmod +x build/tools/samcli/local/rapid/aws-lambda-rie-x86_64
	touch $@

# The runtime interface client (with SnapStart's hooks module) for Lambda's Python: the tests
# serve the runtime tree with it, kept apart from the tree as Lambda's runtime keeps it.
build/lambda-ric/installed:
	rm -rf build/lambda-ric
	$(LAMBDA_PYTHON) -m pip install --quiet --disable-pip-version-check --target build/lambda-ric $(RIC)
	touch $@

# gunicorn for Lambda's Python, by hash, kept apart from the tree as the Dockerfile's server
# target adds it: the tests serve the runtime tree with it (tests/test_server.py).
build/server/installed: requirements/server.lock
	rm -rf build/server
	$(LAMBDA_PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes --target build/server -r requirements/server.lock
	touch $@

# The hash locks of what the tree, its tracing and the server install (after changing a pin in
# runtime.txt, tracing.txt or server.txt): both CPUs' wheels for Lambda's Python, from PyPI.
lock: | $(VENV)/installed
	PYTHON=$(PYTHON) docker/lock.sh requirements/runtime.txt requirements/runtime.lock
	PYTHON=$(PYTHON) docker/lock.sh requirements/tracing.txt requirements/tracing.lock
	PYTHON=$(PYTHON) docker/lock.sh requirements/server.txt requirements/server.lock

# The model the trees bake: rewritten (so the model baked again) only when QA_MODEL, its revision
# or QA_QUANTIZE changes.
MODEL_STAMP = $(call quote,QA_MODEL)@$(call quote,QA_MODEL_REVISION)/$(call quote,QA_QUANTIZE)
build/qa-model: FORCE
	@mkdir -p build
	@echo $(MODEL_STAMP) | cmp -s - $@ || echo $(MODEL_STAMP) > $@

# The model baked once (with the venv's torch), for every tree that holds it.
build/model/baked: build/qa-model requirements/build.txt requirements/torch.txt $(filter-out templates/%,$(APP_FILES)) | $(VENV)/installed
	rm -rf build/model
	$(MODEL_ENV) $(PYTHON) manage.py bake_model --output build/model $(if $(QA_QUANTIZE),--quantize $(call quote,QA_QUANTIZE))
	touch $@

# The torch-free tree that is the image's /var/task and the zip's contents, built outside Docker
# by the Dockerfile's own scripts, for Lambda, with that model: $(call tree,DIR,TRACING).
define tree
$(1)/installed: build/model/baked requirements/runtime.lock $(if $(filter 1,$(2)),requirements/tracing.lock) docker/build-runtime.sh docker/wheel-platforms.sh docker/assemble.sh docker/runtime-tree.txt $(APP_FILES)
	rm -rf $(1)
	ARCH=$(ARCH) TRACING=$(2) docker/build-runtime.sh $(1)
	ARCH=$(ARCH) docker/assemble.sh $(1) build/model
	touch $$@
endef
$(eval $(call tree,$(RUNTIME),$(TRACING)))

runtime: $(RUNTIME)/installed

# The tracing tree beside the default one, for the tests (tests/test_image.py), sharing its model.
ifneq ($(TRACING),1)
$(eval $(call tree,$(TRACING_RUNTIME),1))
endif

# The Lambda zip (serverless.yml, package=zip) of that tree.
$(ZIP): $(RUNTIME)/installed docker/zip.sh
	docker/zip.sh $(RUNTIME) $@

zip: $(ZIP)

run: $(VENV)/installed
	DJANGO_DEBUG=1 $(MODEL_ENV) $(PYTHON) manage.py runserver 127.0.0.1:8000

# One question from the shell with the model `make run` serves:
#   make ask QUESTION="What is my name?" CONTEXT="I'm Kit-Ho Mak." [ASK="--top-k 3 --allow-no-answer"]
# Without CONTEXT the context is read from standard input. The texts reach the command verbatim
# (quote). Without QUESTION: the usage line. make exits 2 whenever the command fails (its
# own status: 1 for an error, 2 for a usage error), after a line naming that status.
unexport QUESTION CONTEXT
ASK_USAGE := usage: make ask QUESTION="..." [CONTEXT="..."] [ASK="--top-k 3 --allow-no-answer"]
ask: $(VENV)/installed
	@$(if $(value QUESTION),$(MODEL_ENV) $(PYTHON) manage.py ask $(call quote,QUESTION) $(if $(value CONTEXT),--context $(call quote,CONTEXT)) $(ASK),echo '$(ASK_USAGE)' >&2; exit 2)

test: $(VENV)/installed node_modules/installed build/tools/installed $(if $(LAMBDA_PYTHON),build/lambda-ric/installed build/server/installed $(RUNTIME)/installed $(TRACING_RUNTIME)/installed)
	$(PYTHON) -m pytest

# The inner loop: every test but the browser, image, zip, load and real-model quality tests.
unit: $(VENV)/installed
	$(PYTHON) -m pytest -m "not (browser or image or zip or load or quality)"

# What CI runs: ruff's lint and format checks, then the import contracts that hold the layout
# (import-linter; settings and contracts in pyproject.toml, docs/development.md).
lint: $(VENV)/installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

.PHONY: unit lint
