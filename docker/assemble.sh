#!/usr/bin/env bash
# Put the app and a baked model (the output of `manage.py bake_model`, which needs torch and so
# runs elsewhere) into a runtime tree made by build-runtime.sh, compile all bytecode, and check
# that the tree answers with nothing but what it holds.
#   usage: docker/assemble.sh TARGET MODEL_DIR
#   PYTHON: the Python Lambda runs (default: docker/lambda-python.sh finds a 3.12)
#   ARCH:   x86_64 (default) or arm64; the check runs only when it is this machine's
set -euo pipefail
target=$1
model=$2
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$("$here/docker/lambda-python.sh")}
arch=${ARCH:-x86_64}

cp -r "$here"/manage.py "$here"/qasite "$here"/qa "$here"/templates "$target"/
find "$target"/qasite "$target"/qa -type d -name __pycache__ -prune -exec rm -rf {} +
# Of the baked model, what the onnx engine reads (docker/runtime-tree.txt's "serve" lines): not the
# safetensors weights nor the TorchScript traces, which only the torch engine reads.
rm -rf "$target/model"
mkdir "$target/model"
while read -r kind name; do
    if [[ $kind == serve ]]; then cp "$model/$name" "$target/model/"; fi
done <"$here/docker/runtime-tree.txt"
# Lambda's file system is read-only, so bytecode is compiled here or at every cold start. Checked
# by nothing, not even the source's timestamp: a zip keeps timestamps to 2 seconds only, which
# would make every timestamp-checked file stale, compiled again at each cold start.
"$python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$target" >/dev/null

if [[ $arch == "$(uname -m)" || ($arch == arm64 && $(uname -m) == aarch64) ]]; then
    # -S: no site-packages, so nothing outside the tree can stand in for what it lacks.
    PYTHONPATH="$target" QA_MODEL="$target/model" DJANGO_ALLOWED_HOSTS=.amazonaws.com \
        HF_HUB_OFFLINE=1 "$python" -S -B - "$here/events/http-api-v2-post-answer.json" >/dev/null <<'CHECK'
import json, sys
from qasite.lambda_handler import handler
event = json.load(open(sys.argv[1]))
response = handler(event, None)
assert response["statusCode"] == 200, response
answer, context = json.loads(response["body"]), json.loads(event["body"])["context"]
assert context[answer["start"] : answer["end"]] == answer["answer"], answer
CHECK
fi

# Sizes in MB of 10**6 bytes, of the files themselves (not the disk blocks they take), as zip.sh
# counts them ("unzipped").
mb='{ bytes += $1 } END { printf "%.0f", bytes / 1e6 }'
echo "runtime tree: $(find "$target" -type f -printf '%s\n' | awk "$mb") MB with app, model and" \
    "bytecode; $(tar -C "$target" -cf - . | gzip -6 | wc -c | awk "$mb") MB gzipped"
