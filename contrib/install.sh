#!/bin/sh
# Installs Agentvisor from this source tree: both binaries, their shell completions (bash, zsh,
# fish) and man pages, and with --systemd the launcher's unit. Run it from the repository root.
#
#   contrib/install.sh                          # into /usr/local (needs root), built with the dist profile
#   contrib/install.sh --prefix ~/.local        # for one user, no root
#   sudo contrib/install.sh --systemd           # also /etc/systemd/system/agentvisor.service
#   contrib/install.sh --from target/dist       # binaries built already: copy them, do not build
#   contrib/install.sh --assets DIR --from target/dist --prefix /usr
#                                               # only write completions, man pages and the unit
#                                               # into DIR (for a package: see docs/operations.md)
#
# DESTDIR is honoured, as by make install: files go to $DESTDIR$PREFIX/...
set -eu

prefix=/usr/local
from=
assets=
systemd=no
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --from) from=$2; shift 2 ;;
        --assets) assets=$2; shift 2 ;;
        --systemd) systemd=yes; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done
[ -f contrib/systemd/agentvisor.service ] || { echo "install.sh: run it from the repository root" >&2; exit 64; }
bins="agentvisor-launcher agentvisor-dashboard"
root=${DESTDIR:-}$prefix

# Completions, man pages and the unit (its ExecStart pointed at $prefix/bin) into the layout
# below $1: share/bash-completion/..., share/zsh/..., share/fish/..., share/man/man1, systemd/.
generate() {
    out=$1
    bindir=$2
    mkdir -p "$out/share/bash-completion/completions" "$out/share/zsh/site-functions" \
        "$out/share/fish/vendor_completions.d" "$out/share/man/man1" "$out/systemd"
    for b in $bins; do
        "$bindir/$b" completions bash >"$out/share/bash-completion/completions/$b"
        "$bindir/$b" completions zsh >"$out/share/zsh/site-functions/_$b"
        "$bindir/$b" completions fish >"$out/share/fish/vendor_completions.d/$b.fish"
        "$bindir/$b" man --dir "$out/share/man/man1"
    done
    sed "s|/usr/local/bin/|$prefix/bin/|g" contrib/systemd/agentvisor.service >"$out/systemd/agentvisor.service"
}

if [ -n "$assets" ]; then
    [ -n "$from" ] || { echo "install.sh: --assets needs --from BIN_DIR" >&2; exit 64; }
    generate "$assets" "$from"
    echo "wrote completions, man pages and the unit into $assets"
    exit 0
fi

mkdir -p "$root/bin"
if [ -n "$from" ]; then
    for b in $bins; do install -m 0755 "$from/$b" "$root/bin/$b"; done
else
    # --locked: the versions this tree was tested with; dist: the release build, stripped.
    cargo install --locked --profile dist --root "$root" --path launcher
    cargo install --locked --profile dist --root "$root" --path dashboard
fi
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
generate "$staging" "$root/bin"
mkdir -p "$root/share"
cp -R "$staging/share/." "$root/share/"
echo "installed $bins into $root/bin, completions and man pages into $root/share"
if [ "$systemd" = yes ]; then
    unitdir=${DESTDIR:-}/etc/systemd/system
    mkdir -p "$unitdir"
    install -m 0644 "$staging/systemd/agentvisor.service" "$unitdir/agentvisor.service"
    echo "installed $unitdir/agentvisor.service; next: docs/operations.md#under-systemd"
fi
