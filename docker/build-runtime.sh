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

# Binary wheels for Lambda's OS and CPU, whatever machine builds the tree: Amazon Linux 2023 has
# glibc 2.34, so any manylinux wheel up to 2.34 runs there (a newer one, which pip would pick for
# a newer build machine, would not).
platforms=(--platform "manylinux2014_$arch")
for minor in $(seq 17 34); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
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

size() { du -sm "$1" | cut -f1; }
before=$(size "$target")

# Parts of the installed packages that serving never imports or loads (the tree's test lists the
# modules and shared libraries a process holds after every kind of request):
# - ONNX Runtime: the C API library (the Python module links the runtime in; it loads only the
#   tiny providers_shared library), and the optimisation, quantisation, conversion and test tools.
rm -rf "$target"/onnxruntime/capi/libonnxruntime.so.* "$target"/onnxruntime/{backend,datasets,quantization,tools,transformers}
# - numpy: its tests and SIMD test module, the Fortran wrapper generator, C headers and
#   libraries, type stubs.
find "$target/numpy" -type d -name tests -prune -exec rm -rf {} +
rm -f "$target"/numpy/_core/_simd.*
rm -rf "$target"/numpy/{f2py,_pyinstaller,_core/include,_core/lib,doc}
find "$target/numpy" -name '*.pyi' -delete
# - Django: apps and translations the project does not use (USE_I18N is off).
rm -rf "$target"/django/contrib/{admin/static,flatpages,gis,humanize,postgres,redirects,sitemaps,sites,syndication}
find "$target/django" "$target/rest_framework" "$target/drf_spectacular" -type d -path '*/locale/*' -prune -exec rm -rf {} +
# - Scripts (django-admin...), wrapt's type stubs (with TRACING=1), and any bytecode of the build
#   machine's (assemble.sh compiles).
rm -rf "$target"/bin "$target"/wrapt-stubs
# - drf-spectacular-sidecar: Redoc and the source maps (the API reference is Swagger UI).
rm -rf "$target"/drf_spectacular_sidecar/static/drf_spectacular_sidecar/redoc
find "$target/drf_spectacular_sidecar" -name '*.map' -delete
find "$target" -type d -name __pycache__ -prune -exec rm -rf {} +

after=$(size "$target")
echo "runtime tree: ${before} MB installed, ${after} MB after dropping unused parts"
