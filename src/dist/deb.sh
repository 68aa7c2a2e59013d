#!/bin/sh
# Builds Ringlet's Debian package from a ringlet binary (`make deb` passes
# the release one, built with `--no-default-features --features
# sqlite,net,system-dbus` so it links the system's libdbus-1 as Debian policy
# prefers; the tests pass the debug one). Needs dpkg-dev (dpkg-shlibdeps,
# dpkg-deb) and binutils (strip); runs unprivileged.
#
#   sh src/dist/deb.sh <ringlet binary> <output dir>
#
# The layout is install.sh's with PREFIX=/usr, plus Debian's places (zsh's
# vendor-completions, /usr/lib/systemd/user) and files (a gzipped man page,
# copyright, changelog.Debian.gz, md5sums). Depends comes from
# dpkg-shlibdeps (libc6, libdbus-1-3; libsqlite3-0, which the
# binary loads on first use, from that package's shlibs file) plus
# ca-certificates for the HTTPS that registry sync and the proxy's upstreams
# use; bubblewrap, the terminal sessions' sandbox, is recommended. The user
# unit is installed but enabled for nobody: the CLI starts a daemon on
# demand, and the unit is a choice (README).
#
# Environment: GEN (see install.sh), CARGO_TREE_FLAGS (the build's features,
# for the crate list), DEB_COMPRESS and DEB_COMPRESS_LEVEL (dpkg-deb's -Z:
# xz, gzip or zstd, default xz; and -z), DEB_REVISION (the Debian revision, default 1),
# DEBFULLNAME/DEBEMAIL (the maintainer, as dch takes them; default git's
# user.name/user.email), SOURCE_DATE_EPOCH (the changelog's date; default
# the last commit's).
set -eu

[ $# -eq 2 ] || {
    echo "usage: sh src/dist/deb.sh <ringlet binary> <output dir>" >&2
    exit 2
}
bin=$1
out=$2
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$bin" ] || {
    echo "deb.sh: $bin is not an executable" >&2
    exit 1
}
for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture strip; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "deb.sh: $tool is missing (Debian: apt-get install dpkg-dev binutils)" >&2
        exit 1
    }
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$SRC/Cargo.toml" | head -n 1)
[ -n "$version" ] || {
    echo "deb.sh: no version in $SRC/Cargo.toml" >&2
    exit 1
}
version=$version-${DEB_REVISION:-1}
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
name=${DEBFULLNAME:-$(git -C "$SRC" config user.name 2>/dev/null || true)}
email=${DEBEMAIL:-$(git -C "$SRC" config user.email 2>/dev/null || true)}
[ -n "$name" ] && [ -n "$email" ] || {
    echo "deb.sh: set DEBFULLNAME and DEBEMAIL (the package's maintainer)" >&2
    exit 1
}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$SRC" log -1 --format=%ct 2>/dev/null || date +%s)}

umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/root
doc=$root/usr/share/doc/ringlet

# SOURCE_DATE_EPOCH dates the man page as the changelog (reproducible).
SOURCE_DATE_EPOCH=$epoch DEB=1 DESTDIR=$root PREFIX=/usr BIN=$bin GEN=${GEN:-$bin} \
    NOTICE_OUT=$work/NOTICE \
    ZSHCOMPDIR=/usr/share/zsh/vendor-completions SYSTEMDUSERUNITDIR=/usr/lib/systemd/user \
    BINDIR= DATADIR= MANDIR= DOCDIR= BASHCOMPDIR= FISHCOMPDIR= \
    sh "$SRC/src/dist/install.sh" install >/dev/null
# What dh_strip does: no symbols or notes in the package (debug builds
# carry hundreds of MB of them).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/ringlet"

# copyright (machine-readable): Ringlet's MIT licence and the embedded
# xterm.js files with their own copyright lines.
{
    printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n'
    printf 'Upstream-Name: ringlet\n'
    # NOTICE (what the binary embeds: the web UI's xterm.js files with
    # their licences, and the Rust crates compiled in) as the comment.
    printf 'Comment:\n'
    sed -e 's/^$/./' -e 's/^/ /' "$work/NOTICE"
    printf '\n'
    printf 'Files: *\nCopyright: 2026 The Ringlet authors\nLicense: MIT\n\n'
    printf 'Files: static/vendor/*\nCopyright:'
    grep -h '^Copyright' "$SRC"/static/vendor/LICENSE.* | sed 's/^Copyright (c) / /' | sort -u
    printf 'License: MIT\n\n'
    printf 'License: MIT\n'
    # The licence text without its title and copyright line, as a field body.
    sed -n '/^Permission/,$p' "$SRC/src/dist/LICENSE" | sed -e 's/^$/./' -e 's/^/ /'
} >"$work/copyright"
install -d "$doc"
install -m 0644 "$work/copyright" "$doc/copyright"

date_rfc=$(LC_ALL=C date -u -R -d "@$epoch")
cat >"$work/changelog" <<EOF
ringlet ($version) unstable; urgency=medium

  * Built from the upstream tree by make deb.

 -- $name <$email>  $date_rfc
EOF
gzip -9n <"$work/changelog" >"$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"

# dpkg-shlibdeps reads debian/control for the package it works for.
mkdir -p "$work/src/debian"
printf 'Source: ringlet\n\nPackage: ringlet\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/ringlet" 2>"$work/shlibdeps.err") || {
    cat "$work/shlibdeps.err" >&2
    exit 1
}
depends=${shlibs#shlibs:Depends=}
# The system SQLite is loaded when a database is first opened, not at start
# (src/sqlite_lazy.rs), so the binary does not name it in NEEDED and
# dpkg-shlibdeps cannot see it: the shlibs line of the package that has it
# gives the same dependency dpkg-shlibdeps would have written.
if grep -q 'libsqlite3\.so\.0' "$root/usr/bin/ringlet" && ! printf '%s' "$depends" | grep -q 'libsqlite3-0'; then
    lazy=$(dpkg-query --control-show libsqlite3-0 shlibs 2>/dev/null |
        awk '$1 == "libsqlite3" && $2 == "0" { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }')
    [ -n "$lazy" ] || {
        echo "deb.sh: the binary loads libsqlite3.so.0, but libsqlite3-0's shlibs file is not there to name the dependency" >&2
        exit 1
    }
    depends="$depends, $lazy"
fi

mkdir -p "$root/DEBIAN"
(cd "$root" && find usr -type f -exec md5sum {} + | LC_ALL=C sort -k 2) >"$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: ringlet
Version: $version
Architecture: $arch
Maintainer: $name <$email>
Installed-Size: $size
Depends: $depends, ca-certificates
Recommends: bubblewrap
Section: devel
Priority: optional
Description: run AI coding agents in isolated profiles
 One binary that is both a shell CLI and a background daemon for AI coding
 agents (Claude Code, Codex CLI, OpenCode, ...): profiles with isolated
 homes and keys in the keychain, generated agent configuration, usage and
 cost tracking from the agents' logs, an HTTP API and web UI, and terminal
 sessions sandboxed with bubblewrap.
EOF
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/ringlet_${version}_$arch.deb
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" ${DEB_COMPRESS_LEVEL:+-z"$DEB_COMPRESS_LEVEL"} \
    --build "$root" "$deb" >/dev/null
echo "$deb"
