#!/usr/bin/env bash
# Put the app and a baked model into a runtime tree made by build-runtime.sh, as the image does,
# and compile all bytecode (Lambda's file system is read-only, so none is written at run time).
#   usage: docker/assemble.sh TARGET MODEL   (MODEL: hub id, or a local model directory)
set -euo pipefail
target=$1
model=$2
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

cp -r "$here"/manage.py "$here"/qasite "$here"/qa "$here"/templates "$target"/
find "$target"/qasite "$target"/qa -type d -name __pycache__ -prune -exec rm -rf {} +
PYTHONPATH="$target" DJANGO_SETTINGS_MODULE=qasite.settings \
    "$python" -S "$target"/manage.py fetch_model --model "$model" --output "$target"/model
if [[ -f "$target/model/model.torchscript.pt" && -f "$target/model/model.bf16.torchscript.pt" ]]; then
    # The model is baked as TorchScript (exact and fast mode), weights included: serving it needs
    # neither the safetensors copy nor transformers and what only transformers imports (sympy alone
    # is 80 MB). Then prove the trimmed tree still answers, in both modes.
    # Nor does anything import, when serving a baked model (listed from sys.modules after every
    # kind of request, in both modes): the hub client and its HTTP and CLI stack (the model is
    # baked in, HF_HUB_OFFLINE is set), safetensors and regex (transformers' own), torch's compiler
    # and exporters (TorchScript runs without them), build tools, and the JSON-schema validator
    # (drf-spectacular's, for `spectacular --validate` only).
    (cd "$target" && rm -rf model/model.safetensors transformers transformers-*.dist-info \
        sympy sympy-*.dist-info isympy.py mpmath mpmath-*.dist-info networkx networkx-*.dist-info \
        huggingface_hub huggingface_hub-*.dist-info httpx2 httpx2-*.dist-info \
        httpcore2 httpcore2-*.dist-info h11 h11-*.dist-info anyio anyio-*.dist-info \
        idna idna-*.dist-info truststore truststore-*.dist-info filelock filelock-*.dist-info \
        fsspec fsspec-*.dist-info typer typer-*.dist-info click click-*.dist-info \
        rich rich-*.dist-info markdown_it markdown_it_py-*.dist-info mdurl mdurl-*.dist-info \
        shellingham shellingham-*.dist-info annotated_doc annotated_doc-*.dist-info \
        safetensors safetensors-*.dist-info regex regex-*.dist-info \
        torch/_inductor torch/_dynamo torch/onnx torch/_lazy functorch \
        setuptools setuptools-*.dist-info _distutils_hack distutils-precedence.pth \
        jsonschema jsonschema-*.dist-info jsonschema_specifications \
        jsonschema_specifications-*.dist-info referencing referencing-*.dist-info \
        rpds rpds_py-*.dist-info attr attrs attrs-*.dist-info)
    PYTHONPATH="$target" "$python" -S -c "
from qa.loading import load_answerer
for engine in ({'engine': 'onnx'}, {'engine': 'torch'}, {'engine': 'torch', 'fast': True}):
    [answer] = load_answerer('$target/model', threads=1, **engine).answer('Who?', 'Kit-Ho Mak is here.')
    assert 'Kit-Ho Mak is here.'[answer.start:answer.end] == answer.answer
"
fi
# (torch's py312_intrinsics test helper is Python 3.12 syntax: skipped when building on 3.11.)
"$python" -m compileall -q -j 0 -x py312_intrinsics "$target" >/dev/null

echo "runtime tree: $(du -sm "$target" | cut -f1) MB with app, model and bytecode;" \
    "$(tar -C "$target" -cf - . | gzip -6 | wc -c | awk '{printf "%.0f", $1 / 1048576}') MB gzipped"
