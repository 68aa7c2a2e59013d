#!/usr/bin/env bash
# Installs what the integration tests need, idempotently and quickly when it
# is already there:
#   - the real agents from the npm registry, pinned in tests/agents/package.json,
#     into $RINGLET_TEST_AGENTS (default ~/.cache/ringlet-test/agents), outside
#     the checkout so a fresh clone does not download them again;
#   - Node.js/npm and util-linux (setpriv) from Debian if they are missing;
#   - rustfmt and clippy if the toolchain lacks them.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
agents=${RINGLET_TEST_AGENTS:-$HOME/.cache/ringlet-test/agents}

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing $*; install it (Debian: apt-get install $*)" >&2
        exit 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v npm >/dev/null 2>&1 || apt_install nodejs npm
command -v setpriv >/dev/null 2>&1 || apt_install util-linux

for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done

# The agents: reinstall only when a pinned version is not what is installed.
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
for bin in claude codex opencode; do
    [ -x "$agents/node_modules/.bin/$bin" ] || stale=1
done

if [ "$stale" = 1 ]; then
    echo "setup: installing the pinned agents into $agents (npm)"
    cp "$here/agents/package.json" "$agents/package.json"
    (cd "$agents" && npm install --no-audit --no-fund --loglevel=error)
fi
echo "setup: agents ready in $agents"
