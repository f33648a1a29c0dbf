#!/usr/bin/env bash
# Install what serving imports (requirements/runtime.txt: ONNX Runtime, numpy, tokenizers, Django
# and friends; no torch, no transformers) into TARGET, for AWS Lambda's Python and CPU, and drop
# what serving never imports or loads. The files installed are those of requirements/runtime.lock,
# checked by SHA-256 (pip refuses any other: a changed or substituted file fails the build). The
# Dockerfile runs this; so do `make runtime` and CI, so the image's and the zip's contents are
# tested.
#   usage: docker/build-runtime.sh TARGET
#   PYTHON: the Python Lambda runs (default: docker/lambda-python.sh finds a 3.12)
#   ARCH:   x86_64 (default) or arm64, as Lambda names them
#   TRACING: 1 to add the X-Ray SDK (requirements/tracing.lock) for QA_TRACING=1; default 0
set -euo pipefail
target=$1
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$("$here/docker/lambda-python.sh")}
arch=${ARCH:-x86_64}
[[ $arch == arm64 ]] && arch=aarch64
tracing=${TRACING:-0}
[[ $tracing == 0 || $tracing == 1 ]] || { echo "TRACING=$tracing: expected 0 or 1" >&2; exit 2; }

# What serving never imports or loads (docker/runtime-tree.txt's "drop" lines, with their
# reasons), deleted after the install; read first, so a malformed line fails the build before it
# starts. One pattern under the tree a line: it is expanded unquoted, so a second word would be
# deleted from the working directory, and an absolute or ".." pattern outside the tree.
drops=()
while read -r kind pattern rest; do
    [[ $kind == drop ]] || continue
    if [[ -z $pattern || -n $rest || $pattern == /* || $pattern == *..* ]]; then
        echo "runtime-tree.txt: \"drop $pattern $rest\": expected one pattern under the tree" >&2
        exit 2
    fi
    drops+=("$pattern")
done <"$here/docker/runtime-tree.txt"

# Binary wheels for Lambda's OS and CPU, whatever machine builds the tree.
mapfile -t platforms < <("$here/docker/wheel-platforms.sh" "$arch")
# --no-deps: runtime.txt lists every distribution serving imports, pinned; runtime.lock holds
# their files' hashes (docker/lock.sh writes it from runtime.txt). The same for tracing.txt,
# whose X-Ray SDK must use the botocore of Lambda's runtime, not one of its own.
install() {
    "$python" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-compile \
        --no-deps --only-binary=:all: --require-hashes --implementation cp "${platforms[@]}" \
        --python-version "$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
        --target "$target" -r "$1"
}
install "$here/requirements/runtime.lock"
if [[ $tracing == 1 ]]; then install "$here/requirements/tracing.lock"; fi

# In MB of 10**6 bytes, of the files themselves, as assemble.sh and zip.sh count them.
size() { find "$1" -type f -printf '%s\n' | awk '{ bytes += $1 } END { printf "%.0f", bytes / 1e6 }'; }
before=$(size "$target")

shopt -s globstar nullglob
for pattern in "${drops[@]}"; do
    # Unquoted: the pattern is expanded (globstar) under the tree; nothing if it matches nothing.
    rm -rf "$target"/$pattern
done

after=$(size "$target")
echo "runtime tree: ${before} MB installed, ${after} MB after dropping unused parts"
