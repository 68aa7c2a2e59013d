//! A module's relative import specifier (`./x.js`, `../y.js`) resolved
//! against the directory of the module that names it, as a browser resolves
//! a path with no query or fragment. One file for the build script, which
//! bundles by it (`build/web.rs`), and for the tests that follow the served
//! modules' imports (`src/daemon/http/assets.rs`, `tests/web_assets.rs`).

/// `spec` resolved against `dir` (`/`-separated). Empty segments are
/// dropped, so the result has no leading `/`.
pub fn resolve(dir: &str, spec: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for segment in spec.split('/') {
        match segment {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}
