#!/usr/bin/env bash
# pip's --platform options for the binary wheels AWS Lambda's OS loads on one CPU, one word a
# line: Amazon Linux 2023 has glibc 2.34, so any manylinux wheel up to 2.34 runs there (a newer
# one, which pip would pick for a newer build machine, would not). build-runtime.sh installs for
# these and lock.sh hashes the files of these, so the two always agree.
#   usage: docker/wheel-platforms.sh ARCH   (x86_64 or aarch64, as uname -m names them)
set -euo pipefail
arch=$1
printf -- '--platform\n%s\n' "manylinux2014_$arch"
for minor in $(seq 17 34); do printf -- '--platform\n%s\n' "manylinux_2_${minor}_$arch"; done
