#!/usr/bin/env bash
# Zip a runtime tree (build-runtime.sh, then assemble.sh) for Lambda's managed Python runtime,
# which unpacks it into /var/task; refuse one Lambda would refuse.
#   usage: docker/zip.sh TREE ZIP
set -euo pipefail
tree=$1
zip=$2
"${PYTHON:-python3}" - "$tree" "$zip" <<'ZIP'
import os, sys, zipfile

tree, out = sys.argv[1:]
# Lambda's limit on a function's code, unzipped (layers included): "250 MB".
LIMIT = 262_144_000
files = sorted(
    os.path.relpath(os.path.join(root, name), tree)
    for root, _, names in os.walk(tree)
    for name in names
    if not (root == tree and name == "installed")  # the Makefile's marker
)
unzipped = sum(os.path.getsize(os.path.join(tree, name)) for name in files)
if unzipped >= LIMIT:
    sys.exit(f"{tree} is {unzipped / 1e6:.0f} MB: Lambda takes {LIMIT / 1e6:.0f} MB at most "
             "unzipped; deploy this model as the container image (package=image)")
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
print(f"{out}: {os.path.getsize(out) / 1e6:.0f} MB, {unzipped / 1e6:.0f} MB unzipped "
      f"(Lambda's limit: {LIMIT / 1e6:.0f} MB)")
ZIP
