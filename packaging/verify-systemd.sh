#!/usr/bin/env bash
# Checks packaging/ferry-rendezvous.service with `systemd-analyze verify`
# (Debian package `systemd`). Runs anywhere, as root or not, with or without
# systemd as PID 1 (CI runs it in a container where it is not), in a second.
#
# verify refuses a unit whose ExecStart binary does not exist, and ferry is
# not installed where this runs; building it would take minutes for nothing
# (verify only checks that the file is executable). So a copy of the unit,
# under its own name, is verified with ExecStart pointing at a stub.
#
# verify exits 0 on most mistakes in a unit (an unknown key, a value it
# cannot parse: "..., ignoring."), so any line it prints about the unit
# fails the check too. Lines about other units (the machine's own, pulled in
# through Wants=/After=) are shown but do not fail it: they are the
# environment's, not ours.
#
# Then `systemd-analyze security --offline=yes` scores the sandbox (0 is
# tight, 10 is none; the unit scores 1.2): above 2.0 fails, so a change
# that loosens it has to come with a new threshold here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
unit=ferry-rendezvous.service
src=$here/$unit
bin=/usr/bin/ferry

if ! command -v systemd-analyze >/dev/null; then
	echo "verify-systemd.sh: systemd-analyze not found (apt-get install systemd)" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\nexit 0\n' >"$tmp/ferry"
chmod 0755 "$tmp/ferry"

grep -q "^ExecStart=$bin " "$src" || {
	echo "verify-systemd.sh: $unit has no ExecStart=$bin line to point at the stub" >&2
	exit 1
}
sed "s#^ExecStart=$bin #ExecStart=$tmp/ferry #" "$src" >"$tmp/$unit"

status=0
# --recursive-errors=no: only the unit itself decides the exit status.
out=$(systemd-analyze verify --man=no --generators=no --recursive-errors=no "$tmp/$unit" 2>&1) || status=$?
if [[ -n $out ]]; then
	printf '%s\n' "$out"
fi
if ((status != 0)); then
	echo "verify-systemd.sh: systemd-analyze verify failed (exit $status)" >&2
	exit 1
fi
if grep -F -e "$tmp/$unit" -e "$unit:" <<<"$out" >/dev/null; then
	echo "verify-systemd.sh: systemd-analyze verify reported problems in $unit (above)" >&2
	exit 1
fi

# --threshold is on a 0-100 scale: 20 is the 2.0 the report prints.
status=0
out=$(systemd-analyze security --offline=yes --threshold=20 "$tmp/$unit" 2>&1) || status=$?
printf '%s\n' "$out" | tail -n1
if ((status != 0)); then
	printf '%s\n' "$out" | grep -F "✗" >&2 || true
	echo "verify-systemd.sh: $unit's sandbox scores above 2.0 (exit $status)" >&2
	exit 1
fi
echo "verify-systemd.sh: $unit OK ($(systemd-analyze --version | head -n1))"
