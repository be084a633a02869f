#!/usr/bin/env bash
# Cross-builds the Windows desktop app from Linux:
#   packaging/dist/ferry-<version>-windows-amd64.exe
#
#   packaging/build-windows.sh [OUT]
#
# One self-contained .exe (Go links everything statically; the C parts of
# the windowing toolkit are compiled by Debian's mingw-w64 cross compiler,
# package gcc-mingw-w64-x86-64), with the icon, the version information
# (Explorer's Properties > Details) and an application manifest embedded.
# packaging/winres writes those resources as a .syso object in the
# repository root, named *_windows_amd64.syso so that no other build links
# it, and this script deletes it again.
#
# The binary uses the Windows GUI subsystem (-H windowsgui), like `fyne
# package -os windows`: double-clicking it opens the window and no console.
# The version is FyneApp.toml's unless VERSION is set. The first build
# compiles the toolkit's C code for Windows and takes several minutes;
# later ones reuse the Go build cache.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cc=${CC:-x86_64-w64-mingw32-gcc}
if ! command -v "$cc" >/dev/null; then
	echo "build-windows.sh: $cc not found (Debian: apt-get install gcc-mingw-w64-x86-64)" >&2
	exit 1
fi
version=${VERSION:-$(sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)}
build=$(sed -n 's/^Build *= *\([0-9]*\).*/\1/p' FyneApp.toml)
if [[ -z $version ]]; then
	echo "build-windows.sh: no Version in FyneApp.toml and VERSION not set" >&2
	exit 1
fi
out=${1:-packaging/dist/ferry-$version-windows-amd64.exe}

syso=$root/zz_winres_windows_amd64.syso
trap 'rm -f "$syso"' EXIT
go run ./packaging/winres -version "$version" -build "${build:-0}" -o "$syso"

# As in build-server.sh: stamp the commit only where git can read the checkout.
buildvcs=()
if ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
	buildvcs=(-buildvcs=false)
fi

mkdir -p "$(dirname "$out")"
set -x
CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=$cc \
	go build -tags release -trimpath "${buildvcs[@]}" \
	-ldflags "-s -w -H=windowsgui -X main.version=$version" -o "$out" .
{ set +x; } 2>/dev/null
echo "==> $out"
