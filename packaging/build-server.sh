#!/usr/bin/env bash
# Builds ferry for running the rendezvous server: one static binary, no C
# compiler or OpenGL/X11 headers needed, and none of their libraries at run
# time. packaging/Containerfile runs exactly this; on a host it is the
# binary to install as /usr/bin/ferry for packaging/ferry-rendezvous.service.
#
#   packaging/build-server.sh [OUT]
#
# OUT defaults to packaging/dist/ferry-<version>-server-linux-<arch>. The
# version is FyneApp.toml's unless VERSION is set; GOOS and GOARCH from the
# environment cross-compile (e.g. GOARCH=arm64), as any static Go build does.
#
# Why `-tags ci`: main.go imports Fyne's app package, whose desktop driver
# (GLFW and OpenGL) needs cgo, so CGO_ENABLED=0 alone fails ("build
# constraints exclude all Go files" in github.com/go-gl/gl). Fyne's own `ci`
# build tag swaps that driver for its headless software one, which needs no
# cgo. The tag changes nothing else in ferry or its other dependencies (only
# files in fyne.io/fyne/v2 carry it), so send, receive and rendezvous are
# the same code as in the desktop build; only `ferry` without arguments
# opens no window (it exits at once). This keeps main.go as it is.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

version=${VERSION:-$(sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)}
if [[ -z $version ]]; then
	echo "build-server.sh: no Version in FyneApp.toml and VERSION not set" >&2
	exit 1
fi
goos=$(go env GOOS)
arch=$(go env GOARCH)
out=${1:-packaging/dist/ferry-$version-server-$goos-$arch}

# Let go build stamp the commit when git can read this checkout. Where it
# cannot (git missing, a worktree's .git pointing outside a container's
# build context, "dubious ownership" of a context owned by another user),
# go build would stop with "error obtaining VCS status"; build unstamped.
buildvcs=()
if ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
	buildvcs=(-buildvcs=false)
fi

mkdir -p "$(dirname "$out")"
set -x
CGO_ENABLED=0 go build -tags ci -trimpath "${buildvcs[@]}" \
	-ldflags "-s -w -X main.version=$version" -o "$out" .
{ set +x; } 2>/dev/null

if [[ $goos == $(go env GOHOSTOS) && $arch == $(go env GOHOSTARCH) ]]; then
	"$out" version
fi
echo "==> $out"
