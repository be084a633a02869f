#!/usr/bin/env bash
# Builds the Debian/Ubuntu package of the desktop app:
#   packaging/dist/ferry_<version>_<arch>.deb
#
#   packaging/build-deb.sh [OUT]
#
# It holds /usr/bin/ferry, the desktop entry (a launcher, and the handler
# of ferry:// share links), the hicolor icons and the AppStream metainfo.
# Install it with `sudo apt-get install ./packaging/dist/ferry_*.deb`, which
# also pulls in the libraries listed in Depends; remove it with `sudo
# apt-get remove ferry`.
#
# No maintainer scripts: Debian's desktop-file-utils and hicolor-icon-theme
# declare dpkg file triggers on /usr/share/applications and
# /usr/share/icons/hicolor, so dpkg itself runs update-desktop-database and
# the icon cache update after installing or removing the files.
#
# Depends: dpkg-shlibdeps (package dpkg-dev) turns the binary's linked
# libraries into package names, and the libraries the windowing toolkit
# (GLFW) opens at run time with dlopen, which no tool can see, are added
# by hand (from glfw/src's _glfwPlatformLoadModule calls). Without
# dpkg-shlibdeps a fixed list for Debian 12 / Ubuntu 22.04 and later is used.
#
# Needs Go, a C compiler and the OpenGL/X11/Wayland headers (cgo), and
# dpkg-deb. The version is FyneApp.toml's unless VERSION is set.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

app_id=io.github.ferry
version=${VERSION:-$(sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)}
if [[ -z $version ]]; then
	echo "build-deb.sh: no Version in FyneApp.toml and VERSION not set" >&2
	exit 1
fi
arch=$(dpkg --print-architecture)
out=${1:-packaging/dist/ferry_${version}_$arch.deb}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# dpkg-shlibdeps expects the files in debian/<package>/ of a source tree.
pkg=$stage/src/debian/ferry
umask 022

# As in build-server.sh: stamp the commit only where git can read the checkout.
buildvcs=()
if ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
	buildvcs=(-buildvcs=false)
fi
# Compile flags: a position-independent executable (Debian's hardening
# default; lintian warns without it) with no build paths in it. Both change
# how every package compiles, so the first such build takes minutes even
# when the build cache holds a plain `go build` of ferry. The test that
# builds this package in CI sets FERRY_DEB_BUILDFLAGS= (empty) to reuse the
# tests' build instead: only the link step then differs.
read -r -a buildflags <<<"${FERRY_DEB_BUILDFLAGS--buildmode=pie -trimpath}"
mkdir -p "$pkg/usr/bin"
set -x
go build "${buildflags[@]}" "${buildvcs[@]}" \
	-ldflags "-s -w -X main.version=$version" -o "$pkg/usr/bin/ferry" .
{ set +x; } 2>/dev/null

share=$pkg/usr/share
install -Dm0644 "packaging/$app_id.desktop" "$share/applications/$app_id.desktop"
install -Dm0644 "packaging/$app_id.metainfo.xml" "$share/metainfo/$app_id.metainfo.xml"
(cd packaging/icons && find hicolor -type f -name "$app_id.*") | while read -r f; do
	install -Dm0644 "packaging/icons/$f" "$share/icons/$f"
done
doc=$share/doc/ferry
install -d "$doc"
{
	echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
	echo "Upstream-Name: ferry"
	echo "Source: https://github.com/ferry-app/ferry"
	echo
	echo "Files: *"
	echo "Copyright: the ferry authors"
	echo "License: MIT"
	sed 's/^$/./; s/^/ /' LICENSE
} >"$doc/copyright"
printf 'ferry (%s) unstable; urgency=medium\n\n  * Release %s; see https://github.com/ferry-app/ferry.\n\n -- ferry authors <ferry@users.noreply.github.com>  %s\n' \
	"$version" "$version" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
	gzip -9n >"$doc/changelog.gz"

# Libraries GLFW dlopens: X11 (always tried) and Wayland (used on a Wayland
# session), and EGL/GL for the OpenGL context.
dlopened="libx11-6, libx11-xcb1, libxcursor1, libxext6, libxi6, libxinerama1, libxrandr2, libxrender1, libxxf86vm1, libwayland-client0, libwayland-cursor0, libwayland-egl1, libxkbcommon0, libegl1, libgl1"
mkdir -p "$pkg/DEBIAN"
if command -v dpkg-shlibdeps >/dev/null; then
	# dpkg-shlibdeps wants to run from a source tree with debian/control,
	# on files in debian/<package>/ next to its DEBIAN/.
	mkdir -p "$stage/src/debian"
	printf 'Source: ferry\n\nPackage: ferry\nArchitecture: any\n' >"$stage/src/debian/control"
	linked=$(cd "$stage/src" && dpkg-shlibdeps -O debian/ferry/usr/bin/ferry | sed -n 's/^shlibs:Depends=//p')
else
	linked="libc6 (>= 2.34), libgl1, libwayland-client0"
fi
# One entry per package: the versioned one from dpkg-shlibdeps wins.
depends=$(printf '%s, %s' "$linked" "$dlopened" | tr ',' '\n' | sed 's/^ *//; /^$/d' |
	awk '{ name = $1 } !(name in seen) { seen[name] = 1; print }' | paste -sd, - | sed 's/,/, /g')

cat >"$pkg/DEBIAN/control" <<CONTROL
Package: ferry
Version: $version
Architecture: $arch
Maintainer: ferry authors <ferry@users.noreply.github.com>
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: $depends
Recommends: libdecor-0-0
Section: net
Priority: optional
Homepage: https://github.com/ferry-app/ferry
Description: send files peer to peer with a short share code
 ferry sends files, folders and short texts from one computer to another,
 directly and end-to-end encrypted. The sender gets a short share code such
 as 7-guitar-orbit; the receiver types it in and the transfer starts. Peers
 find each other on the local network or through a self-hostable
 rendezvous server, punch through NATs, and resume interrupted transfers.
 .
 This package contains the desktop app and the ferry command (send,
 receive, netcheck, rendezvous), and registers ferry as the handler of
 ferry:// share links.
CONTROL

mkdir -p "$(dirname "$out")"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out" >/dev/null
echo "==> $out"
