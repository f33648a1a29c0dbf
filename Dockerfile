# qasite for AWS Lambda as a container image. Build with network access (it downloads the model
# once, at build time):
#   docker build --platform linux/amd64 -t qasite .
# The image serves from the same torch-free tree as the zip (`make zip`): ONNX Runtime, numpy,
# tokenizers, Django and the app, with the model baked as an ONNX graph. torch and transformers
# only bake it, in a stage of their own. Every RUN step that builds the tree is a script that CI
# also runs outside Docker (see .ci/run and tests/test_image.py).

# 1. Bake the model (hub download, ONNX export checked against torch): needs torch.
FROM public.ecr.aws/lambda/python:3.12 AS bake
WORKDIR /build
COPY requirements requirements
# The CPU-only torch build (no CUDA libraries) comes from PyTorch's own index.
RUN python3.12 -m pip install --no-cache-dir -r requirements/build.txt \
        --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
COPY manage.py ./
COPY qasite qasite
COPY qa qa
ARG QA_MODEL=mrm8488/bert-tiny-5-finetuned-squadv2
RUN python3.12 manage.py fetch_model --model "${QA_MODEL}" --output /model

# 2. The runtime tree, without torch: what serving imports, the app, the baked model, bytecode.
FROM public.ecr.aws/lambda/python:3.12 AS build
WORKDIR /build
COPY requirements/runtime.txt requirements/runtime.txt
COPY docker/build-runtime.sh docker/build-runtime.sh
RUN PYTHON=python3.12 docker/build-runtime.sh "${LAMBDA_TASK_ROOT}"
COPY manage.py ./
COPY qasite qasite
COPY qa qa
COPY templates templates
COPY events/http-api-v2-post-answer.json events/http-api-v2-post-answer.json
COPY docker/assemble.sh docker/assemble.sh
COPY --from=bake /model /model
RUN PYTHON=python3.12 docker/assemble.sh "${LAMBDA_TASK_ROOT}" /model

FROM public.ecr.aws/lambda/python:3.12
ARG QA_MODEL=mrm8488/bert-tiny-5-finetuned-squadv2
ENV QA_MODEL=/var/task/model \
    QA_MODEL_NAME=${QA_MODEL} \
    HF_HUB_OFFLINE=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=qasite.settings
COPY --from=build /var/task /var/task
CMD ["qasite.lambda_handler.handler"]
