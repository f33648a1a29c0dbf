# qasite for AWS Lambda. Build with network access (it downloads the model once, at build time):
#   docker build --platform linux/amd64 -t qasite .
# Every RUN step is a script that CI also runs outside Docker (see .ci/run and tests/test_image.py).

FROM public.ecr.aws/lambda/python:3.12 AS build
# strip, to drop the debug symbols torch ships with.
# hadolint ignore=DL3041
RUN dnf install -y binutils && dnf clean all
WORKDIR /build
COPY requirements/runtime.txt requirements/runtime.txt
COPY docker/build-runtime.sh docker/build-runtime.sh
# The CPU-only torch build (no CUDA libraries) comes from PyTorch's own index.
RUN PYTHON=python3.12 docker/build-runtime.sh "${LAMBDA_TASK_ROOT}" \
        --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
COPY manage.py ./
COPY qasite qasite
COPY qa qa
COPY templates templates
COPY docker/assemble.sh docker/assemble.sh
ARG QA_MODEL=mrm8488/bert-tiny-5-finetuned-squadv2
RUN PYTHON=python3.12 docker/assemble.sh "${LAMBDA_TASK_ROOT}" "${QA_MODEL}"

FROM public.ecr.aws/lambda/python:3.12
ARG QA_MODEL=mrm8488/bert-tiny-5-finetuned-squadv2
ENV QA_MODEL=/var/task/model \
    QA_MODEL_NAME=${QA_MODEL} \
    HF_HUB_OFFLINE=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=qasite.settings
COPY --from=build /var/task /var/task
CMD ["qasite.lambda_handler.handler"]
