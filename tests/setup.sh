#!/usr/bin/env bash
# Installs what the integration tests need, idempotently and quickly when it
# is already there:
#   - the real agents from the npm registry, pinned in tests/agents/package.json,
#     into $RINGLET_TEST_AGENTS (default ~/.cache/ringlet-test/agents), outside
#     the checkout so a fresh clone does not download them again; ccusage,
#     pinned there too, for the usage cross-check (tests/usage.rs) and the
#     usage figures of `make bench`;
#   - for the browser tests (tests/browser.rs), Debian's chromium and a font
#     (fonts-dejavu-core, so screenshots render alike everywhere) without
#     recommends, and playwright-core and axe-core from npm, pinned in
#     tests/browser/package.json, into $RINGLET_TEST_BROWSER (default
#     ~/.cache/ringlet-test/browser); playwright drives /usr/bin/chromium and
#     never downloads a browser of its own;
#   - Node.js/npm and util-linux (setpriv) from Debian if they are missing;
#   - a headless Secret Service for the keychain tests (dbus, gnome-keyring,
#     secret-tool; see tests/with-keyring.sh), tmux, bubblewrap and minisign
#     (the registry's signature tests), without recommends, if they are missing;
#   - rustfmt and clippy if the toolchain lacks them;
#   - the system SQLite the default build links (libsqlite3-dev, pkg-config);
#   - LiteLLM's proxy (`litellm[proxy]`, pinned below and in
#     src/proxy/litellm.rs) into a venv at $RINGLET_TEST_LITELLM_VENV
#     (default ~/.cache/ringlet-test/litellm-venv) for the external-backend
#     test (tests/proxy_litellm.rs): about 760 MB and, once per machine,
#     1 to 5 minutes; python3-venv from Debian if `python3 -m venv` lacks it.
# `setup.sh --build-deps` does only the last item (what `make build` needs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
agents=${RINGLET_TEST_AGENTS:-$HOME/.cache/ringlet-test/agents}
browser=${RINGLET_TEST_BROWSER:-$HOME/.cache/ringlet-test/browser}
litellm_venv=${RINGLET_TEST_LITELLM_VENV:-$HOME/.cache/ringlet-test/litellm-venv}
# The newest release whose `proxy` extra resolves from PyPI here (later ones
# pin litellm-enterprise / litellm-proxy-extras / litellm-proxy builds the
# registry does not serve); src/proxy/litellm.rs PINNED_VERSION says the same.
litellm_version=1.108.7

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
# `make deb` also links the system's libdbus (the `system-dbus` feature) and
# needs dpkg-dev (dpkg-shlibdeps) and binutils (strip).
if [ "${1:-}" = "--deb-deps" ]; then
    deb=()
    pkg-config --exists dbus-1 2>/dev/null || deb+=(libdbus-1-dev)
    command -v dpkg-shlibdeps >/dev/null 2>&1 || deb+=(dpkg-dev)
    command -v strip >/dev/null 2>&1 || deb+=(binutils)
    [ ${#deb[@]} -eq 0 ] || apt_install --no-install-recommends "${deb[@]}"
    exit 0
fi

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
# The registry's signature tests sign with the real minisign tool.
command -v minisign >/dev/null 2>&1 || lean+=(minisign)
# The browser tests drive Debian's chromium (headless); one plain font keeps
# their screenshots alike from machine to machine.
[ -x /usr/bin/chromium ] || lean+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || lean+=(fonts-dejavu-core)
# The CLI's completions are tried in each real shell; the man page is
# linted with mandoc; the user unit is checked by systemd-analyze; the .deb
# is built with dpkg-dev and checked by lintian; the `system-dbus` feature
# links the system's libdbus.
for bin in zsh fish mandoc lintian systemd-analyze dpkg-shlibdeps; do
    case $bin in
        systemd-analyze) pkg=systemd ;;
        dpkg-shlibdeps) pkg=dpkg-dev ;;
        *) pkg=$bin ;;
    esac
    command -v "$bin" >/dev/null 2>&1 || lean+=("$pkg")
done
pkg-config --exists dbus-1 2>/dev/null || lean+=(libdbus-1-dev)
[ ${#lean[@]} -eq 0 ] || apt_install --no-install-recommends "${lean[@]}"

for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done

# The agents (and ccusage): reinstall only when a pinned package is missing or
# not at its pinned version, so a new pin in package.json is noticed. One node
# run checks every pin (a run per package cost more than the rest of this
# script) and warns when an installed package's `engines.node` range excludes
# this Node (Claude Code 2.1.332 declares >=22 and runs on 20: a warning, not
# a failure).
mkdir -p "$agents" "$browser"
# check_pins <package.json> <install dir>: prints "stale" when a pin is not
# installed at its version.
check_pins() {
    node - "$1" "$2" <<'JS'
const [pins, dir] = process.argv.slice(2);
const deps = require(pins).dependencies;
// A minimal semver range check (no semver package here): `||` sets of
// comparators `>=1.2`, `<23`, `^20.1`, `~1.2.3`, `1.x`, `*`, `a - b`.
const parse = (v) => v.replace(/^[v=]+/, '').split('-')[0].split('.').map((p) => (/^\d+$/.test(p) ? +p : null));
const cmp = (a, b) => { for (let i = 0; i < 3; i++) { const d = (a[i] ?? 0) - (b[i] ?? 0); if (d) return d; } return 0; };
const node = parse(process.version);
const satisfies = (range) => range.split('||').some((set) => {
    set = set.trim().replace(/^(\S+)\s+-\s+(\S+)$/, '>=$1 <=$2');
    return set.split(/\s+/).filter(Boolean).every((c) => {
        const [, op, ver] = c.match(/^(>=|<=|>|<|=|\^|~)?(.*)$/);
        if (ver === '' || ver === '*' || /^[xX*]/.test(ver)) return true;
        const v = parse(ver);
        const known = v.findIndex((p) => p === null);
        const parts = known < 0 ? v.length : known;
        const c0 = cmp(node, v);
        switch (op) {
            case '>=': return c0 >= 0;
            case '>': return c0 > 0;
            case '<=': return c0 <= 0 || node.slice(0, parts).every((p, i) => p === v[i]);
            case '<': return c0 < 0;
            case '^': return c0 >= 0 && node[0] === v[0] && (v[0] !== 0 || node[1] === v[1]);
            case '~': return c0 >= 0 && node[0] === v[0] && (parts < 2 || node[1] === v[1]);
            default: return node.slice(0, parts).every((p, i) => p === v[i]);
        }
    });
});
let stale = false;
for (const [name, version] of Object.entries(deps)) {
    let pkg;
    try { pkg = require(`${dir}/node_modules/${name}/package.json`); } catch (e) { stale = true; continue; }
    if (pkg.version !== version) { stale = true; continue; }
    const range = pkg.engines && pkg.engines.node;
    if (typeof range === 'string' && !satisfies(range)) {
        console.error(`setup: warning: ${name} ${version} declares engines.node "${range}"; ` +
            `this Node is ${process.version} (it may still run)`);
    }
}
if (stale) console.log('stale');
JS
}
stale=$(check_pins "$here/agents/package.json" "$agents")
for bin in claude codex opencode ccusage; do
    [ -x "$agents/node_modules/.bin/$bin" ] || stale=stale
done

if [ -n "$stale" ]; then
    echo "setup: installing the pinned agents into $agents (npm)"
    cp "$here/agents/package.json" "$agents/package.json"
    (cd "$agents" && npm install --no-audit --no-fund --loglevel=error)
    [ -z "$(check_pins "$here/agents/package.json" "$agents")" ] ||
        { echo "setup: the pinned agents did not install" >&2; exit 1; }
fi
echo "setup: agents ready in $agents"

# playwright-core (the driver only: no browser download) and axe-core, the
# same way.
if [ -n "$(check_pins "$here/browser/package.json" "$browser")" ]; then
    echo "setup: installing playwright-core and axe-core into $browser (npm)"
    cp "$here/browser/package.json" "$browser/package.json"
    (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error)
    [ -z "$(check_pins "$here/browser/package.json" "$browser")" ] ||
        { echo "setup: playwright-core and axe-core did not install" >&2; exit 1; }
fi
echo "setup: browser test tools ready in $browser"

# LiteLLM: a stamp written after pip succeeds records the version, so an
# interrupted install is never mistaken for a good one (a venv cannot be
# built elsewhere and moved: its scripts name its path).
stamp="$litellm_venv/.ringlet-litellm-version"
if [ "$(cat "$stamp" 2>/dev/null)" != "$litellm_version" ] || [ ! -x "$litellm_venv/bin/litellm" ]; then
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    echo "setup: installing litellm[proxy]==$litellm_version into $litellm_venv (pip; about 760 MB)"
    rm -rf "$litellm_venv"
    mkdir -p "$(dirname "$litellm_venv")"
    python3 -m venv "$litellm_venv"
    "$litellm_venv/bin/pip" install --quiet --disable-pip-version-check \
        "litellm[proxy]==$litellm_version"
    echo "$litellm_version" > "$stamp"
fi
echo "setup: litellm $litellm_version ready in $litellm_venv"
