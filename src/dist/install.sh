#!/bin/sh
# Installs or removes Ringlet's files: `make install` / `make uninstall`, and
# the staging step of `make deb` (src/dist/deb.sh). One place knows where
# each file goes, so the three never disagree.
#
#   sh src/dist/install.sh install|uninstall
#
# Installed: the binary; the man page and the bash, zsh and fish completions,
# which the binary prints (`ringlet manpage`, `ringlet completions <shell>`),
# each in its shell's standard place; the systemd user unit (not enabled);
# the licence and a NOTICE for the files of other projects the binary
# embeds. Everything comes from the environment (the Makefile passes it):
#
#   BIN      the binary to install (make: target/release/ringlet)
#   GEN      the binary run to print the man page and completions; default
#            BIN (set it when BIN cannot run here, e.g. a cross build)
#   PREFIX   /usr/local; a leading ~ is expanded, as not every shell does it
#            in `make install PREFIX=~/.local`
#   DESTDIR  a staging root put before every path written (never into the
#            paths the files name, such as the unit's ExecStart)
#   BINDIR DATADIR MANDIR DOCDIR BASHCOMPDIR ZSHCOMPDIR FISHCOMPDIR
#   SYSTEMDUSERUNITDIR   override single places (defaults below)
#   DEB=1    Debian's layout: the man page gzipped, and no LICENSE or NOTICE
#            (deb.sh writes /usr/share/doc/ringlet/copyright with both)
#   CARGO_TREE_FLAGS     the features the binary was built with, for the
#            list of compiled-in crates in NOTICE (make deb passes its own)
set -eu

action=${1:-}
case $action in
install | uninstall) ;;
*)
    echo "usage: sh src/dist/install.sh install|uninstall" >&2
    exit 2
    ;;
esac

SRC=$(cd "$(dirname "$0")/../.." && pwd)
PREFIX=${PREFIX:-/usr/local}
case $PREFIX in
"~") PREFIX=$HOME ;;
"~/"*) PREFIX=$HOME/${PREFIX#"~/"} ;;
esac
case $PREFIX in
/*) ;;
*)
    echo "install.sh: PREFIX must be an absolute path, not $PREFIX" >&2
    exit 2
    ;;
esac
PREFIX=${PREFIX%/}
DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-$PREFIX/bin}
DATADIR=${DATADIR:-$PREFIX/share}
MANDIR=${MANDIR:-$DATADIR/man}
DOCDIR=${DOCDIR:-$DATADIR/doc/ringlet}
# bash-completion and fish also search $XDG_DATA_HOME (~/.local/share) and
# every $XDG_DATA_DIRS entry (/usr/local/share, /usr/share); zsh's default
# fpath has /usr/local/share/zsh/site-functions (Debian's packages use
# /usr/share/zsh/vendor-completions: deb.sh says so).
BASHCOMPDIR=${BASHCOMPDIR:-$DATADIR/bash-completion/completions}
ZSHCOMPDIR=${ZSHCOMPDIR:-$DATADIR/zsh/site-functions}
FISHCOMPDIR=${FISHCOMPDIR:-$DATADIR/fish/vendor_completions.d}
# The user manager reads units from /usr/lib/systemd/user and
# /usr/local/lib/systemd/user, and from <dir>/systemd/user for ~/.local/share
# and every $XDG_DATA_DIRS entry: lib for the two system prefixes, as
# distributions do, share (~/.local/share/systemd/user) for any other.
case $PREFIX in
/usr | /usr/local) SYSTEMDUSERUNITDIR=${SYSTEMDUSERUNITDIR:-$PREFIX/lib/systemd/user} ;;
*) SYSTEMDUSERUNITDIR=${SYSTEMDUSERUNITDIR:-$DATADIR/systemd/user} ;;
esac
DEB=${DEB:-}
D=$DESTDIR

if [ "$action" = uninstall ]; then
    for f in "$BINDIR/ringlet" "$MANDIR/man1/ringlet.1" "$MANDIR/man1/ringlet.1.gz" \
        "$BASHCOMPDIR/ringlet" "$ZSHCOMPDIR/_ringlet" "$FISHCOMPDIR/ringlet.fish" \
        "$SYSTEMDUSERUNITDIR/ringlet.service" "$DOCDIR/LICENSE" "$DOCDIR/NOTICE" \
        "$DOCDIR/copyright" "$DOCDIR/changelog.Debian.gz"; do
        rm -f "$D$f"
    done
    # Ours alone; the shared directories above it stay.
    rmdir "$D$DOCDIR" 2>/dev/null || true
    echo "removed ringlet from $D$PREFIX (a running daemon or an enabled unit is yours to stop)"
    exit 0
fi

BIN=${BIN:?install.sh: set BIN to the ringlet binary to install}
GEN=${GEN:-$BIN}
[ -x "$BIN" ] || {
    echo "install.sh: $BIN is not an executable (build it first: make build)" >&2
    exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Printed by the binary from the same command table as its --help, so the
# page and the completions never disagree with the CLI. A failure stops the
# install rather than install an empty file.
generate() { # <file> <args...>
    out=$1
    shift
    if ! "$GEN" "$@" >"$tmp/$out" 2>"$tmp/err"; then
        echo "install.sh: \`$GEN $*\` failed: $(cat "$tmp/err")" >&2
        exit 1
    fi
    [ -s "$tmp/$out" ] || {
        echo "install.sh: \`$GEN $*\` printed nothing" >&2
        exit 1
    }
}
generate ringlet.1 manpage
generate ringlet.bash completions bash
generate _ringlet completions zsh
generate ringlet.fish completions fish
sed "s|@BINDIR@|$BINDIR|g" "$SRC/src/dist/ringlet.service.in" >"$tmp/ringlet.service"

install -d "$D$BINDIR" "$D$MANDIR/man1" "$D$BASHCOMPDIR" "$D$ZSHCOMPDIR" "$D$FISHCOMPDIR" \
    "$D$SYSTEMDUSERUNITDIR"
install -m 0755 "$BIN" "$D$BINDIR/ringlet"
if [ -n "$DEB" ]; then
    gzip -9n <"$tmp/ringlet.1" >"$tmp/ringlet.1.gz"
    install -m 0644 "$tmp/ringlet.1.gz" "$D$MANDIR/man1/ringlet.1.gz"
else
    install -m 0644 "$tmp/ringlet.1" "$D$MANDIR/man1/ringlet.1"
fi
install -m 0644 "$tmp/ringlet.bash" "$D$BASHCOMPDIR/ringlet"
install -m 0644 "$tmp/_ringlet" "$D$ZSHCOMPDIR/_ringlet"
install -m 0644 "$tmp/ringlet.fish" "$D$FISHCOMPDIR/ringlet.fish"
install -m 0644 "$tmp/ringlet.service" "$D$SYSTEMDUSERUNITDIR/ringlet.service"

# NOTICE: the files of other projects the binary embeds (its web UI's
# static/vendor, listed in VERSIONS with one LICENSE.<name> each), with
# their licences, and the Rust crates compiled in. Written from the tree at
# install time, so it cannot fall behind an update of either.
notice() {
    printf 'Ringlet\nCopyright (c) 2026 The Ringlet authors, under the MIT licence (LICENSE).\n\n'
    printf 'The ringlet binary embeds its web UI, which includes these files of other\n'
    printf 'projects, unchanged (static/vendor in the source tree):\n'
    for lic in "$SRC"/static/vendor/LICENSE.*; do
        name=${lic##*/LICENSE.}
        # "<package> <version> <integrity> <licence>", package "@scope/<name>".
        pkg=$(awk -v n="$name" '$1 !~ /^#/ && ($1 == n || $1 ~ ("/" n "$")) { print $1 " " $2 " (" $4 ")" }' \
            "$SRC/static/vendor/VERSIONS")
        files=$(cd "$SRC/static/vendor" && ls "$name".* 2>/dev/null | tr '\n' ' ')
        printf '\n----\n%s: %s\n\n' "${pkg:-$name}" "${files% }"
        cat "$lic"
    done
    # Without cargo (files staged from a prebuilt binary) the list is left
    # out; with it, a failure stops the install rather than leave it short.
    # CARGO may carry options (`make deb CARGO='cargo --offline'`): words.
    cargo=${CARGO:-cargo}
    if command -v "${cargo%% *}" >/dev/null 2>&1 && [ -f "$SRC/Cargo.lock" ]; then
        # shellcheck disable=SC2086 # the flags are words on purpose
        if ! (cd "$SRC" && $cargo tree --locked --offline -e normal --prefix none \
            --format '{p} {l}' ${CARGO_TREE_FLAGS:-}) >"$tmp/crates" 2>"$tmp/err"; then
            echo "install.sh: listing the crates for NOTICE failed: $(cat "$tmp/err")" >&2
            exit 1
        fi
        printf '\n----\nRust crates compiled into the binary, each under its own licence (the\n'
        printf 'texts are in each crate'"'"'s source at crates.io):\n\n'
        sed -e 's/ (\*)$//' -e 's/ (proc-macro)//' -e "s| ($SRC)||" "$tmp/crates" |
            grep -v '^ringlet ' | sort -u
        # The default `vendored-dbus` feature compiles libdbus's C code in.
        if ! printf '%s' "${CARGO_TREE_FLAGS:-}" | grep -q -- '--no-default-features'; then
            printf '\nlibdbus (C, compiled in by the vendored-dbus feature): AFL-2.1 OR GPL-2.0-or-later\n'
        fi
    fi
}
if [ -z "$DEB" ]; then
    install -d "$D$DOCDIR"
    notice >"$tmp/NOTICE"
    install -m 0644 "$SRC/src/dist/LICENSE" "$D$DOCDIR/LICENSE"
    install -m 0644 "$tmp/NOTICE" "$D$DOCDIR/NOTICE"
else
    # For deb.sh, which puts it into the copyright file.
    notice >"${NOTICE_OUT:?DEB=1 needs NOTICE_OUT}"
fi
echo "installed ringlet into $D$PREFIX (the user unit is not enabled: see README)"
