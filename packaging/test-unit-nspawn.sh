#!/usr/bin/env bash
# Runs packaging/ferry-rendezvous.service for real, sandbox and all, where
# systemd is not PID 1: boots this machine's own /usr in systemd-nspawn
# (a throwaway root on tmpfs, --volatile=yes) with only basic.target and the
# unit, relays a transfer through the server from outside, checks that the
# process runs unprivileged and filtered, then powers the container off and
# checks that the server stopped cleanly on SIGTERM.
#
# Not part of CI (verify-systemd.sh is): it needs root, Debian's
# systemd-container package and a machine whose network may be shared with
# the booted container (it listens on 127.0.0.1 only). Takes about 20s
# after the build.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${PORT:-17888}
unit=ferry-rendezvous.service

tmp=$(mktemp -d)
chmod 0755 "$tmp" # the unit's dynamic user must reach the binary
nspawn_pid=
cleanup() {
	if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
		kill -TERM "$nspawn_pid"
		wait "$nspawn_pid" || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

"$root/packaging/build-server.sh" "$tmp/ferry" >/dev/null 2>&1
sed -e "s#^ExecStart=/usr/bin/ferry rendezvous --listen :7887 #ExecStart=/opt/ferry/ferry rendezvous --listen 127.0.0.1:$port #" \
	"$root/packaging/$unit" >"$tmp/$unit"
grep -q "^ExecStart=/opt/ferry/ferry " "$tmp/$unit"

# --register=no --keep-unit: there is no systemd (and no bus) outside to ask.
timeout 300 systemd-nspawn --quiet --register=no --keep-unit --volatile=yes -D / \
	--bind-ro="$tmp:/opt/ferry" --bind-ro="$tmp/$unit:/etc/systemd/system/$unit" \
	-b systemd.unit=basic.target systemd.wants=$unit systemd.mask=nftables.service \
	systemd.firstboot=off systemd.journald.forward_to_console=1 >"$tmp/console.log" 2>&1 &
nspawn_pid=$!

pid=
for _ in $(seq 60); do
	pid=$(ss -Hlntp "sport = :$port" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n1)
	[[ -n $pid ]] && break
	sleep 0.5
done
if [[ -z $pid ]]; then
	sed 's/\x1b\[[0-9;]*m//g' "$tmp/console.log" | tail -n 30 >&2
	echo "test-unit-nspawn.sh: the server never listened on 127.0.0.1:$port" >&2
	exit 1
fi
echo "== server pid $pid:"
grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$pid/status"
grep 'open files' "/proc/$pid/limits"
[[ $(awk '/^Uid:/{print $2}' "/proc/$pid/status") != 0 ]]
grep -q '^CapEff:[[:space:]]*0*$' "/proc/$pid/status"
grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$pid/status"
grep -q '^Seccomp:[[:space:]]*2$' "/proc/$pid/status"

echo "== a relayed transfer through it:"
mkdir "$tmp/in" "$tmp/out"
head -c 20000000 /dev/urandom >"$tmp/in/blob"
"$tmp/ferry" send --rendezvous "127.0.0.1:$port" --relay-only --json "$tmp/in/blob" >"$tmp/send.json" 2>/dev/null &
send_pid=$!
code=
for _ in $(seq 40); do
	code=$(sed -n 's/.*"code":"\([^"]*\)".*/\1/p' "$tmp/send.json")
	[[ -n $code ]] && break
	sleep 0.25
done
timeout 60 "$tmp/ferry" receive --rendezvous "127.0.0.1:$port" --relay-only --yes --json \
	--out "$tmp/out" "$code" >"$tmp/recv.json" 2>/dev/null
wait "$send_pid"
cmp "$tmp/in/blob" "$tmp/out/blob"
grep -E '"event":"(connected|done)"' "$tmp/recv.json"

echo "== power off (SIGTERM to the server):"
kill -TERM "$nspawn_pid"
wait "$nspawn_pid" || true
nspawn_pid=
sed 's/\x1b\[[0-9;]*m//g' "$tmp/console.log" | grep -a 'ferry\[' | tail -n 2 | cut -c1-160
sed 's/\x1b\[[0-9;]*m//g' "$tmp/console.log" | grep -aq 'msg="rendezvous server stopped"'
echo "test-unit-nspawn.sh: OK"
