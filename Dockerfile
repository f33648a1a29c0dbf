# qasite as a container image: for AWS Lambda (the default target), or as a plain HTTP server
# (`--target server`: gunicorn on port 8080, for ECS/Fargate, App Runner or Elastic Beanstalk).
# Build with network access (the model is downloaded once, at build time), one CPU at a time,
# as an image manifest Lambda accepts (no provenance or SBOM attestations: with them the push
# is an image index, which Lambda refuses):
#   docker buildx build --platform linux/amd64 --provenance=false --sbom=false -t qasite --load .
#   (linux/arm64 for Graviton; the function's architecture parameter must match.)
# The image serves from the same torch-free tree as the zip (`make zip`): ONNX Runtime, numpy,
# tokenizers, Django and the app, with the model baked as an ONNX graph. torch and transformers
# only bake it, in a stage of their own. Every RUN step that builds the tree is a script that CI
# also runs outside Docker (see .ci/run and tests/test_image.py).

# AWS's Lambda base image for Python 3.12, pinned by the digest of its multi-platform index
# (one digest for both CPUs). To move to AWS's latest (security fixes), read the tag's digest
#   docker buildx imagetools inspect public.ecr.aws/lambda/python:3.12
# ("Digest:" at the top) and put it here; docs/deploying.md ("Supply chain").
ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12@sha256:0628ddc11919f85f4261517d356392dbbc6b3181568d87a376ae2e814464c230
# The model to bake: empty for the production model at its pinned hub commit, both declared in
# qasite/settings.py (PRODUCTION_MODEL, PRODUCTION_MODEL_REVISION); another hub model with
#   --build-arg QA_MODEL=<hub id> --build-arg QA_MODEL_REVISION=<commit>
# (so that a rebuild bakes the same weights). Health reports the id the bake records.
ARG QA_MODEL=
ARG QA_MODEL_REVISION=
# --build-arg QA_QUANTIZE=int8: the graph served in int8 (bake_model --quantize int8, kept only if
# it passes the quality gate). Empty: float32.
ARG QA_QUANTIZE=

# 1. Bake the model (hub download at a pinned revision, ONNX export checked against torch):
#    needs torch.
FROM ${BASE_IMAGE} AS bake
WORKDIR /build
COPY requirements requirements
# One index per install, never two mixed, as the Makefile's .venv: torch's CPU build (no CUDA
# libraries; requirements/torch.txt) alone from PyTorch's CPU index, then the rest, torch's own
# dependencies included, from PyPI (torch is then already there).
RUN python3.12 -m pip install --no-cache-dir --no-deps --index-url https://download.pytorch.org/whl/cpu \
        -r requirements/torch.txt \
    && python3.12 -m pip install --no-cache-dir --index-url https://pypi.org/simple \
        -r requirements/build.txt
COPY manage.py ./
COPY qasite qasite
COPY qa qa
# The settings read the two from the environment, where empty means the production model.
ARG QA_MODEL
ARG QA_MODEL_REVISION
ARG QA_QUANTIZE
RUN python3.12 manage.py bake_model --output /model ${QA_QUANTIZE:+--quantize "$QA_QUANTIZE"}

# 2. The runtime tree, without torch: what serving imports (from requirements/runtime.lock, by
#    hash), the app, the baked model, bytecode. For this stage's CPU (uname -m). With
#    --build-arg TRACING=1, the X-Ray SDK too (requirements/tracing.lock), for a function
#    deployed with tracing=true.
FROM ${BASE_IMAGE} AS build
ARG TRACING=0
WORKDIR /build
COPY requirements/runtime.lock requirements/tracing.lock requirements/
COPY docker/build-runtime.sh docker/wheel-platforms.sh docker/runtime-tree.txt docker/
RUN ARCH="$(uname -m)" TRACING="${TRACING}" PYTHON=python3.12 \
        docker/build-runtime.sh "${LAMBDA_TASK_ROOT}"
COPY manage.py ./
COPY qasite qasite
COPY qa qa
COPY templates templates
COPY events/http-api-v2-post-answer.json events/http-api-v2-post-answer.json
COPY docker/assemble.sh docker/runtime-tree.txt docker/
COPY --from=bake /model /model
RUN ARCH="$(uname -m)" PYTHON=python3.12 docker/assemble.sh "${LAMBDA_TASK_ROOT}" /model

# 3. The plain HTTP server: the same tree, and gunicorn (requirements/server.lock, by hash).
FROM ${BASE_IMAGE} AS server
ENV QA_MODEL=/var/task/model \
    HF_HUB_OFFLINE=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/var/task \
    DJANGO_SETTINGS_MODULE=qasite.settings
COPY --from=build /var/task /var/task
COPY requirements/server.lock /tmp/server.lock
RUN python3.12 -m pip install --no-cache-dir --no-deps --only-binary=:all: --require-hashes \
        --target /var/task -r /tmp/server.lock \
    && rm /tmp/server.lock
WORKDIR /var/task
# Not root; /tmp is the only place written to (the onnx engine's cache, gunicorn's heartbeats).
USER 1000
EXPOSE 8080
ENTRYPOINT []
CMD ["python3.12", "-m", "gunicorn", "--bind", "0.0.0.0:8080", "--workers", "2", "--threads", "4", \
     "--worker-tmp-dir", "/tmp", "qasite.wsgi"]

# 4. AWS Lambda (the default target: last).
FROM ${BASE_IMAGE}
ENV QA_MODEL=/var/task/model \
    HF_HUB_OFFLINE=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=qasite.settings
COPY --from=build /var/task /var/task
CMD ["qasite.lambda_handler.handler"]
