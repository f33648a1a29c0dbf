#!/usr/bin/env bash
# Write a hash lock (pip's --require-hashes format) of a requirements file of exact pins, for the
# wheels Lambda's Python (3.12) installs on both its CPUs (x86_64 and arm64): pip downloads each
# pinned wheel for each, from PyPI only, and the lock lists the SHA-256 of every file it got.
# build-runtime.sh installs from the lock, so a rebuild installs exactly these files or fails.
#   usage: docker/lock.sh requirements/runtime.txt requirements/runtime.lock
# Run it after changing a pin (tests/test_lock.py checks the lock against the pins).
set -euo pipefail
requirements=$1
lock=$2
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for arch in x86_64 aarch64; do
    # The platforms build-runtime.sh installs for.
    mapfile -t platforms < <("$(dirname "$0")/wheel-platforms.sh" "$arch")
    "$python" -m pip --isolated download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --implementation cp --python-version 3.12 "${platforms[@]}" \
        --index-url https://pypi.org/simple --dest "$work/$arch" -r "$requirements"
done

"$python" - "$requirements" "$lock" "$work" <<'LOCK'
import hashlib, re, sys
from pathlib import Path

requirements, lock, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
canonical = lambda name: re.sub(r"[-_.]+", "-", name).lower()
pins = {}
for line in Path(requirements).read_text().splitlines():
    line = line.split("#")[0].strip()
    if line:
        name, version = line.split("==")
        pins[canonical(name)] = (name, version)
hashes = {key: set() for key in pins}
for wheel in work.glob("*/*.whl"):
    name, version = wheel.name.split("-")[:2]
    key = canonical(name)
    assert pins[key][1] == version, (wheel.name, pins[key])
    hashes[key].add(hashlib.sha256(wheel.read_bytes()).hexdigest())
lines = [
    f"# The files of {requirements}'s pins that Lambda's Python 3.12 installs on x86_64 and arm64,",
    f"# by SHA-256. Written by docker/lock.sh from PyPI; do not edit.",
]
for key, (name, version) in pins.items():
    assert hashes[key], f"no wheel of {name}=={version}"
    lines.append(f"{name}=={version} \\")
    lines += [f"    --hash=sha256:{digest} \\" for digest in sorted(hashes[key])]
    lines[-1] = lines[-1].removesuffix(" \\")
lock.write_text("\n".join(lines) + "\n")
print(f"{lock}: {len(pins)} pins, {sum(map(len, hashes.values()))} files")
LOCK
