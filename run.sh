#!/usr/bin/env bash
# Sets up a Debian or Ubuntu machine for ferry, builds it and starts it:
#
#   ./run.sh                 open the desktop app
#   ./run.sh send FILE       any ferry command: the arguments are passed on
#   ./run.sh --build-only    install and build, start nothing (CI runs this)
#   ./run.sh --print-go      install what is missing, print the go it uses
#
# 1. Installs the Debian packages the build needs (a C compiler and the
#    OpenGL/X11/Wayland headers for the desktop toolkit; the same list as
#    .ci/run) with apt-get, through sudo unless run as root.
# 2. Uses the `go` on the PATH (or /usr/local/go/bin/go) if it is at least
#    the version in go.mod's go line; otherwise installs Go from the Go
#    module proxy (the golang.org/toolchain module, which is what `go`
#    itself downloads to switch toolchains), checks the download against
#    the hash below, and keeps it in ~/.local/share/ferry/ (not on the
#    PATH; this script finds it there next time).
# 3. Builds ./ferry (`go build -o ferry .`; the first build compiles the
#    toolkit's C code and takes a few minutes) and runs it.
#
# Quiet when everything is already there. Environment: FERRY_GO_DIR
# changes where Go is installed; FERRY_FORCE_GO_INSTALL=1 installs it
# there even when a suitable go exists (for the test of this script).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"

# The Go release to install when none suitable is found, and the hash of its
# module zip as the Go checksum database records it (h1: of
# golang.org/toolchain@v0.0.1-go$go_version.linux-amd64). Raise both with go.mod's go line.
go_version=1.26.8
go_sums=(
	"linux-amd64 h1:ZOmGe1OnfREDMIdb1Qi4G9JSuDPBLGExZMQ4nis1RXM="
)

build_only=''
print_go=''
if [[ ${1:-} == --build-only ]]; then
	build_only=1
	shift
elif [[ ${1:-} == --print-go ]]; then
	print_go=1
	shift
fi

say() { echo "run.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

sudo=()
as_root() {
	if [[ $(id -u) -ne 0 && ${#sudo[@]} -eq 0 ]]; then
		command -v sudo >/dev/null || die "not root and no sudo: install the packages below as root, then run this again: $*"
		sudo=(sudo)
	fi
	"${sudo[@]}" "$@"
}

# --- Go: which one, and is it new enough? ---------------------------------
need_go=$(sed -n 's/^go \([0-9.]*\).*/\1/p' go.mod)
[[ -n $need_go ]] || die "no go line in go.mod"
version_ge() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]; }
go_dir=${FERRY_GO_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/ferry/go$go_version}

find_go() {
	local g v
	for g in "$go_dir/bin/go" "$(command -v go || true)" /usr/local/go/bin/go; do
		[[ -n $g && -x $g ]] || continue
		[[ ${FERRY_FORCE_GO_INSTALL:-} == 1 && $g != "$go_dir/bin/go" ]] && continue
		# GOTOOLCHAIN=local: report this go's own version, never switch.
		v=$(GOTOOLCHAIN=local "$g" env GOVERSION 2>/dev/null) || continue
		v=${v#go}
		if version_ge "${v%%[-+ ]*}" "$need_go"; then
			echo "$g"
			return
		fi
	done
}
gobin=$(find_go)

# --- system packages --------------------------------------------------------
# Keep this list the same as .ci/run's build packages.
packages=(gcc libc6-dev pkg-config libgl1-mesa-dev xorg-dev libwayland-dev libxkbcommon-dev wayland-protocols)
if [[ -z $gobin ]]; then
	packages+=(curl ca-certificates unzip)
fi
missing=()
for p in "${packages[@]}"; do
	if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	command -v apt-get >/dev/null || die "no apt-get: install the equivalents of ${missing[*]} and Go $need_go or newer, then run this again"
	say "installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Go from the module proxy ----------------------------------------------
# h1: is the Go checksum database's hash of a module zip: the base64 SHA-256
# of the sorted "SHA-256  path" lines of its files (`sha256sum`'s format).
h1_of_tree() {
	local hex esc="" i
	hex=$(cd "$1" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
	for ((i = 0; i < ${#hex}; i += 2)); do
		esc+="\\x${hex:i:2}"
	done
	# shellcheck disable=SC2059 # the format is the point: \xNN escapes
	printf "h1:%s" "$(printf "$esc" | base64)"
}

install_go() {
	version_ge "$go_version" "$need_go" || die "go.mod wants Go $need_go but this script installs $go_version: raise go_version and go_sums here"
	local os arch platform want="" line tmp mod
	os=linux
	case $(uname -m) in
	x86_64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) die "no Go download set up for $(uname -m): install Go $need_go or newer from https://go.dev/dl/" ;;
	esac
	platform=$os-$arch
	for line in "${go_sums[@]}"; do
		[[ ${line%% *} == "$platform" ]] && want=${line#* }
	done
	[[ -n $want ]] || die "no checksum for Go on $platform in run.sh: install Go $need_go or newer from https://go.dev/dl/"
	mod=golang.org/toolchain@v0.0.1-go$go_version.$platform
	local proxy=${GOPROXY:-https://proxy.golang.org}
	proxy=${proxy%%[,|]*}
	[[ $proxy == http* ]] || proxy=https://proxy.golang.org
	say "installing Go $go_version into $go_dir (from $proxy)"
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064 # expand $tmp now
	trap "rm -rf '$tmp'" EXIT
	curl -fsSL --retry 3 -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$go_version.$platform.zip"
	mkdir "$tmp/x"
	unzip -q "$tmp/go.zip" -d "$tmp/x"
	local got
	got=$(cd "$tmp/x" && h1_of_tree .)
	# The hashed paths include the module path prefix, as in the zip.
	[[ $got == "$want" ]] || die "the Go download's hash is $got, expected $want: not installing it"
	mkdir -p "$(dirname "$go_dir")"
	rm -rf "$go_dir"
	mv "$tmp/x/$mod" "$go_dir"
	rm -rf "$tmp"
	trap - EXIT
}

if [[ -z $gobin ]]; then
	install_go
	gobin=$go_dir/bin/go
fi
PATH="$(dirname "$gobin"):$PATH"
export PATH
if [[ -n $print_go ]]; then
	echo "$gobin"
	exit 0
fi

# --- build and run ----------------------------------------------------------
if [[ ! -x ferry ]]; then
	say "building ./ferry with $(go version | cut -d' ' -f3) (the first build takes a few minutes)"
fi
go build -o ferry .
if [[ -n $build_only ]]; then
	exit 0
fi
exec ./ferry "$@"
