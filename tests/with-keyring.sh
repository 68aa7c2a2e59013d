#!/bin/sh
# Usage: tests/with-keyring.sh CMD [ARGS...]
#
# Runs CMD inside a private D-Bus session bus where gnome-keyring provides the
# Secret Service, with a throwaway "login" collection created and unlocked, so
# the keychain tests run headless (CI, containers, ssh) without touching the
# user's own keyring:
#
#   tests/with-keyring.sh env REQUIRE_KEYCHAIN=1 cargo test --bin ringlet secrets
#
# CMD's exit status is passed through. Nothing is left behind: the keyring
# daemon is stopped and its files (all under one temp dir) removed before
# this script returns. Needs dbus, gnome-keyring and libsecret-tools
# (tests/setup.sh installs them). dbus-run-session may print "Failed to set fd
# limit to 65536: Operation not permitted" when not allowed to; it is harmless.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

# First pass: start a private session bus and run this script again inside
# it. dbus-run-session stops the bus when the script ends and exits with its
# status.
if [ -z "${WITH_KEYRING_INNER:-}" ]; then
    export WITH_KEYRING_INNER=1
    exec dbus-run-session -- "$0" "$@"
fi
unset WITH_KEYRING_INNER

kr_dir=$(mktemp -d "${TMPDIR:-/tmp}/ringlet-keyring.XXXXXX")
daemon_pid=

# Whether process $1 still runs. A zombie counts as gone: the daemon is
# reparented to init, which (in some containers) reaps late.
running() {
    case $(ps -o stat= -p "$1" 2>/dev/null) in
        '' | Z*) return 1 ;;
    esac
}

cleanup() {
    # The daemon would exit once the bus goes away, but only after this
    # script has returned; stop it now so it writes nothing after the rm.
    if [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null; then
        i=0
        while running "$daemon_pid" && [ "$i" -lt 50 ]; do
            i=$((i + 1))
            sleep 0.1
        done
    fi
    rm -rf "$kr_dir"
}
trap cleanup EXIT
# A signal must still run the EXIT trap (dash skips it otherwise).
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Every place the daemon might write is inside $kr_dir, for the daemon only:
# the keyring files (XDG_DATA_HOME/keyrings) and its control socket
# (XDG_RUNTIME_DIR/keyring, else ~/.cache/keyring-*). HOME stays as it is:
# cargo finds ~/.cargo through it. --unlock reads the password on stdin and
# creates or unlocks the "login" collection, the Secret Service default.
printf '%s' "${CI_KEYRING_PASSWORD:-ci-keyring-pw}" |
    XDG_DATA_HOME="$kr_dir" XDG_RUNTIME_DIR="$kr_dir" XDG_CACHE_HOME="$kr_dir" \
        XDG_CONFIG_HOME="$kr_dir" gnome-keyring-daemon --unlock --components=secrets >/dev/null

# The daemon claims org.freedesktop.secrets asynchronously; without this wait
# an early request would D-Bus-activate a second daemon with default paths.
owner_pid() {
    dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus / \
        org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets \
        2>/dev/null | awk '{ print $2 }'
}
i=0
until daemon_pid=$(owner_pid) && [ -n "$daemon_pid" ]; do
    i=$((i + 1))
    if [ "$i" -gt 50 ]; then
        echo "with-keyring: the Secret Service did not start within 5 s" >&2
        exit 1
    fi
    sleep 0.1
done

# No exec: the EXIT trap has to run after CMD.
status=0
"$@" || status=$?
exit "$status"
