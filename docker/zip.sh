#!/usr/bin/env bash
# Zip a runtime tree (build-runtime.sh, then assemble.sh) for Lambda's managed Python runtime,
# which unpacks it into /var/task; refuse one Lambda would refuse.
#   usage: docker/zip.sh TREE ZIP
set -euo pipefail
tree=$1
zip=$2
"${PYTHON:-python3}" - "$tree" "$zip" <<'ZIP'
import json, os, sys, zipfile

tree, out = sys.argv[1:]
# Sizes in MB of 10**6 bytes, as the Makefile's scripts and the benchmark print them. Lambda's
# limit on a function's code, unzipped (layers included), which AWS calls "250 MB", is 250 MiB:
# 262,144,000 bytes, 262 MB.
MB = 10**6
LIMIT = 250 * 2**20
files = sorted(
    os.path.relpath(os.path.join(root, name), tree)
    for root, _, names in os.walk(tree)
    for name in names
    if not (root == tree and name == "installed")  # the Makefile's marker
)
unzipped = sum(os.path.getsize(os.path.join(tree, name)) for name in files)
if unzipped >= LIMIT:
    sys.exit(f"{tree} is {unzipped / MB:.0f} MB: Lambda takes {LIMIT / MB:.0f} MB at most "
             "unzipped; deploy this model as the container image (package=image)")
# The model the zip holds, as bake_model recorded it (model/source.json) and health reports it.
try:
    with open(os.path.join(tree, "model", "source.json"), encoding="utf-8") as record:
        recorded = json.load(record)
    model = f"{recorded['model']} at revision {recorded.get('revision') or '(none recorded)'}"
except FileNotFoundError:
    model = "none"
# The same tree gives the same bytes (so the same CodeSha256): entries in order, timestamps
# fixed. World-readable, as Lambda runs the code as another user than the one who unpacks it.
with zipfile.ZipFile(out + ".part", "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
    for name in files:
        path = os.path.join(tree, name)
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        mode = 0o755 if os.access(path, os.X_OK) else 0o644
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as source:
            archive.writestr(info, source.read(), compresslevel=6)
os.replace(out + ".part", out)
print(f"{out}: {os.path.getsize(out) / MB:.0f} MB, {unzipped / MB:.0f} MB unzipped "
      f"(Lambda's limit: {LIMIT / MB:.0f} MB); model: {model}")
ZIP
