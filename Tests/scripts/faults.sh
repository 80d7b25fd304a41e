#!/usr/bin/env bash
# Runs faults_test.py inside a private mount namespace (unshare -m), with a 4 MiB tmpfs for the
# full-disk case and a bind mount that is remounted read-only. Needs root: tests and CI run as
# root, where chmod stops nothing, so a mount is the honest way to make writes fail.
set -euo pipefail
binary="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/jobpool-faults.XXXXXX")"
mkdir -p "$work/full" "$work/ro"
# The mounts live in the namespace only; the folder is removed once it ends.
trap 'rm -rf "$work"' EXIT
unshare --mount --propagation private -- bash -c "
    mount -t tmpfs -o size=4m tmpfs '$work/full'
    mount --bind '$work/ro' '$work/ro'
    cd '$here' && timeout 300 python3 faults_test.py '$binary' '$work/full' '$work/ro'
"
