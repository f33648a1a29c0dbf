#!/usr/bin/env bash
# Print the path of a Python of the version AWS Lambda runs (3.12), which builds and tests the
# runtime tree: $LAMBDA_PYTHON, else python3.12 on PATH, else pyenv's 3.12 (whose shim answers only
# when 3.12 is a selected version). Exit 1, saying so, when there is none.
set -uo pipefail
version=3.12
for candidate in ${LAMBDA_PYTHON:-} "python$version" \
    "$(pyenv root 2>/dev/null)/versions/$version".*/bin/"python$version"; do
    if "$candidate" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$version'" 2>/dev/null; then
        "$candidate" -c "import sys; print(sys.executable)"
        exit 0
    fi
done
echo "no Python $version found (AWS Lambda's): install python$version, or set LAMBDA_PYTHON" >&2
exit 1
