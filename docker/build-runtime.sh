#!/usr/bin/env bash
# Install qasite's runtime dependencies into TARGET and drop what inference never uses.
# The Dockerfile runs this; CI runs it outside Docker too, so the image's contents are tested.
#   usage: docker/build-runtime.sh TARGET [extra pip arguments, e.g. --index-url ...]
set -euo pipefail
target=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

"$python" -m pip install --quiet --no-cache-dir --no-compile --target "$target" \
    --no-warn-conflicts -r "$here/requirements/runtime.txt" "$@"

size() { du -sm "$1" | cut -f1; }
before=$(size "$target")

# torch: C++ tests and test libraries, headers, build tools (only the shared-memory manager,
# which torch checks for at import, stays in bin/).
rm -rf "$target"/torch/test "$target"/torch/include "$target"/torch/share
find "$target/torch/bin" -type f ! -name torch_shm_manager -delete
rm -f "$target"/torch/lib/lib{jitbackend_test,torchbind_test,backend_with_compiler,aoti_custom_ops}.so
# torch's own libraries ship with debug symbols; the wheels' vendored (patched) libraries don't,
# and must not be stripped.
strip --strip-unneeded "$target"/torch/lib/libtorch_cpu.so "$target"/torch/lib/libtorch_python.so \
    "$target"/torch/lib/libc10.so
# transformers: model code other than the extractive-QA encoders a QA_MODEL is likely to be.
keep='^(__init__\.py|auto|bert|distilbert|roberta|xlm_roberta|albert|electra|deberta_v2|mobilebert)$'
find "$target/transformers/models" -mindepth 1 -maxdepth 1 | while read -r path; do
    [[ $(basename "$path") =~ $keep ]] || rm -rf "$path"
done
# Django: apps and translations the project does not use (USE_I18N is off).
rm -rf "$target"/django/contrib/{admin/static,flatpages,gis,humanize,postgres,redirects,sitemaps,sites,syndication}
find "$target/django" "$target/rest_framework" -type d -path '*/locale/*' -prune -exec rm -rf {} +
# drf-spectacular-sidecar: Redoc and the source maps (the API reference is Swagger UI).
rm -rf "$target"/drf_spectacular_sidecar/static/drf_spectacular_sidecar/redoc
find "$target/drf_spectacular_sidecar" -name '*.map' -delete
# Download accelerator and packaging tools: never used at run time.
rm -rf "$target"/hf_xet "$target"/hf_xet-*.dist-info "$target"/bin
find "$target" -type d -name __pycache__ -prune -exec rm -rf {} +

after=$(size "$target")
echo "runtime tree: ${before} MB installed, ${after} MB after dropping unused parts"
