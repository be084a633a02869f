#!/usr/bin/env bash
# Builds the Linux desktop package of ferry:
#   packaging/dist/ferry-<version>-linux-<arch>.tar.xz
#
# `go tool fyne package -os linux --release` (the fyne tool pinned in go.mod)
# builds the binary and makes a tarball with the binary, a .desktop file, the
# FyneApp.toml icon in share/pixmaps and a Makefile (install, user-install,
# uninstall, user-uninstall). That tool does not ship the AppStream metainfo
# or the hicolor icon theme, so this script adds both to the tarball and to the
# Makefile's install targets, then repacks it.
#
# Needs Go, a C compiler and the OpenGL/X11 development headers (cgo), tar and xz.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

app_id=io.github.ferry
metainfo=packaging/$app_id.metainfo.xml
version=$(sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
arch=$(go env GOARCH)
dist=packaging/dist
out=$dist/ferry-$version-linux-$arch.tar.xz

# fyne package reuses an existing ./ferry instead of building, which would
# package a stale (non-release) binary.
if [[ -e ferry ]]; then
	echo "build-linux.sh: ./ferry exists; remove it so the package is built from source" >&2
	exit 1
fi

stage=$(mktemp -d)
# fyne package increments Build in FyneApp.toml after every package; keep the
# committed file as it is (bump Build by hand for a release).
cp FyneApp.toml "$stage/FyneApp.toml.orig"
cleanup() {
	cp "$stage/FyneApp.toml.orig" "$root/FyneApp.toml"
	rm -rf "$stage" "$root/ferry.tar.xz"
}
trap cleanup EXIT
mkdir "$stage/pkg"

echo "==> go tool fyne package -os linux --release"
go tool fyne package -os linux --release
# The tool writes ferry.tar.xz next to FyneApp.toml.
tar -xJf ferry.tar.xz -C "$stage/pkg"

# The tool uses usr/local when /usr/local exists on the build machine, else usr.
prefix=$(cd "$stage/pkg" && dirname "$(dirname "$(find . -path '*/bin/ferry' -type f | head -n1)")")
share=$stage/pkg/$prefix/share
rel=${prefix#./*/} # prefix as the Makefile sees it, e.g. usr/local

# The tool's desktop entry has no MimeType field: register ferry as the
# handler of ferry:// share links, as the hand-written entry does.
for entry in "$share"/applications/*.desktop; do
	if [[ -e $entry ]] && ! grep -q '^MimeType=' "$entry"; then
		echo 'MimeType=x-scheme-handler/ferry;' >>"$entry"
	fi
done

if [[ ! -e $share/metainfo/$app_id.metainfo.xml ]]; then
	install -Dm0644 "$metainfo" "$share/metainfo/$app_id.metainfo.xml"
	added_metainfo=1
fi
if [[ ! -d $share/icons/hicolor ]]; then
	mkdir -p "$share/icons"
	cp -R packaging/icons/hicolor "$share/icons/"
	chmod -R u=rwX,go=rX "$share/icons/hicolor"
	added_icons=1
fi

# Teach the tool's Makefile to install what was added: after each target's
# line installing or removing $(Icon), add the matching metainfo and hicolor lines.
if [[ -n ${added_metainfo:-}${added_icons:-} ]]; then
	makefile=$(find "$stage/pkg" -maxdepth 2 -name Makefile | head -n1)
	awk -v rel="$rel" -v id="$app_id" \
		-v mi="${added_metainfo:-}" -v ic="${added_icons:-}" '
		/^[a-z-]+:/ { target = $1; sub(":", "", target) }
		{ print }
		/\/\$\(Icon\)$/ {
			sys = "$(DESTDIR)$(PREFIX)/share"
			usr = "$(DESTDIR)$(HOME)/.local/share"
			icons = "$$(cd " rel "/share/icons && find hicolor -type f)"
			if (target == "install" || target == "user-install") {
				dest = (target == "install") ? sys : usr
				if (mi) print "\tinstall -Dm00644 " rel "/share/metainfo/" id ".metainfo.xml " dest "/metainfo/" id ".metainfo.xml"
				if (ic) print "\tfor f in " icons "; do install -Dm00644 " rel "/share/icons/$$f " dest "/icons/$$f; done"
			} else if (target == "uninstall" || target == "user-uninstall") {
				dest = (target == "uninstall") ? sys : usr
				if (mi) print "\t-rm " dest "/metainfo/" id ".metainfo.xml"
				if (ic) print "\t-for f in " icons "; do rm " dest "/icons/$$f; done"
			}
		}' "$makefile" >"$makefile.new"
	mv "$makefile.new" "$makefile"
fi

mkdir -p "$dist"
top=$(cd "$stage/pkg" && ls)
tar -cJf "$out" -C "$stage/pkg" --owner=0 --group=0 --numeric-owner "$top"
echo "==> $out"
