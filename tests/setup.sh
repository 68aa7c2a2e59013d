#!/usr/bin/env bash
# Installs what the integration tests need, idempotently and quickly when it
# is already there:
#   - the real agents from the npm registry, pinned in tests/agents/package.json,
#     into $RINGLET_TEST_AGENTS (default ~/.cache/ringlet-test/agents), outside
#     the checkout so a fresh clone does not download them again; ccusage,
#     pinned there too, for the usage cross-check (tests/usage.rs) and the
#     usage figures of `make bench`;
#   - Node.js/npm and util-linux (setpriv) from Debian if they are missing;
#   - a headless Secret Service for the keychain tests (dbus, gnome-keyring,
#     secret-tool; see tests/with-keyring.sh), tmux and bubblewrap, without
#     recommends, if they are missing;
#   - rustfmt and clippy if the toolchain lacks them;
#   - the system SQLite the default build links (libsqlite3-dev, pkg-config).
# `setup.sh --build-deps` does only the last item (what `make build` needs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
agents=${RINGLET_TEST_AGENTS:-$HOME/.cache/ringlet-test/agents}

# apt_install [apt-get option...] package...
apt_install() {
    local opts=() pkgs=() arg
    for arg in "$@"; do
        case $arg in
            -*) opts+=("$arg") ;;
            *) pkgs+=("$arg") ;;
        esac
    done
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing ${pkgs[*]}; install it (Debian: apt-get install $*)" >&2
        exit 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    echo "setup: installing ${pkgs[*]} (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${opts[@]}" "${pkgs[@]}" >/dev/null
}

# The default build links the system's libsqlite3 (the OpenCode usage reader);
# pkg-config finds it. `--features bundled-sqlite` needs neither.
if ! pkg-config --exists sqlite3 2>/dev/null; then
    apt_install --no-install-recommends libsqlite3-dev pkg-config
fi
[ "${1:-}" != "--build-deps" ] || exit 0

command -v npm >/dev/null 2>&1 || apt_install nodejs npm
command -v setpriv >/dev/null 2>&1 || apt_install util-linux

# The keychain tests run inside tests/with-keyring.sh: a private session bus
# (dbus-run-session), gnome-keyring's Secret Service, and secret-tool to check
# what it holds. Recommends would pull in desktop pieces none of them need.
lean=()
for bin in dbus-run-session dbus-daemon dbus-send; do
    command -v "$bin" >/dev/null 2>&1 || { lean+=(dbus); break; }
done
command -v gnome-keyring-daemon >/dev/null 2>&1 || lean+=(gnome-keyring)
command -v secret-tool >/dev/null 2>&1 || lean+=(libsecret-tools)
command -v tmux >/dev/null 2>&1 || lean+=(tmux)
# The terminal sandbox's tests run the real bwrap.
command -v bwrap >/dev/null 2>&1 || lean+=(bubblewrap)
[ ${#lean[@]} -eq 0 ] || apt_install --no-install-recommends "${lean[@]}"

for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done

# The agents (and ccusage): reinstall only when a pinned package is missing or
# not at its pinned version, so a new pin in package.json is noticed.
mkdir -p "$agents"
wanted=$(cd "$here/agents" && node -e '
    const deps = require("./package.json").dependencies;
    for (const [name, version] of Object.entries(deps)) console.log(name + " " + version);
')
stale=0
while read -r name version; do
    installed=$(node -e "try { console.log(require('$agents/node_modules/$name/package.json').version) } catch (e) {}")
    [ "$installed" = "$version" ] || stale=1
done <<< "$wanted"
for bin in claude codex opencode ccusage; do
    [ -x "$agents/node_modules/.bin/$bin" ] || stale=1
done

if [ "$stale" = 1 ]; then
    echo "setup: installing the pinned agents into $agents (npm)"
    cp "$here/agents/package.json" "$agents/package.json"
    (cd "$agents" && npm install --no-audit --no-fund --loglevel=error)
fi
echo "setup: agents ready in $agents"
