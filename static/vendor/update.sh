#!/usr/bin/env bash
# Vendors the browser terminal's JavaScript from the npm registry into this
# directory: @xterm/xterm and three of its addons (fit, search, web links),
# all MIT, none with dependencies. Run it by hand after changing a pin below;
# the daemon embeds what it leaves here (src/daemon/http/assets.rs) and the
# web UI works offline. It writes, per package, its ES module (source-map
# comment removed: the maps are not shipped), its LICENSE, and one line in
# VERSIONS (name, version, the registry's integrity hash, licence).
set -euo pipefail

pins=(
    "@xterm/xterm@6.0.0 lib/xterm.mjs css/xterm.css"
    "@xterm/addon-fit@0.11.0 lib/addon-fit.mjs"
    "@xterm/addon-search@0.16.0 lib/addon-search.mjs"
    "@xterm/addon-web-links@0.12.0 lib/addon-web-links.mjs"
)

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

{
    echo "# Vendored by update.sh: package version integrity licence"
    for pin in "${pins[@]}"; do
        read -r spec files <<<"$pin"
        name=${spec%@*}
        version=${spec##*@}
        short=${name#@xterm/}
        (cd "$work" && npm pack --silent "$spec" >/dev/null)
        tgz="$work/xterm-$short-$version.tgz"
        mkdir -p "$work/$short"
        tar xzf "$tgz" -C "$work/$short"
        pkg="$work/$short/package"
        licence=$(node -p "require('$pkg/package.json').license")
        [ "$licence" = MIT ] || { echo "update.sh: $spec is $licence, not MIT" >&2; exit 1; }
        integrity=$(npm view "$spec" dist.integrity)
        for file in $files; do
            sed '/^\/\/# sourceMappingURL=/d' "$pkg/$file" >"$here/$(basename "$file")"
        done
        cp "$pkg/LICENSE" "$here/LICENSE.$short"
        echo "$name $version $integrity $licence"
    done
} >"$here/VERSIONS.new"
mv "$here/VERSIONS.new" "$here/VERSIONS"
echo "update.sh: vendored into $here:"
cat "$here/VERSIONS"
