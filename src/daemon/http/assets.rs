//! The web UI's files, served from the binary (design.md §5). `src/build.rs`
//! embeds every file under `static/` gzip-compressed, with a version (a hash
//! of them all) that `index.html` puts in every `/static/` URL it names;
//! the scripts import each other relatively, so they inherit it.
//!
//! - `/` and `/index.html`: the page, `Cache-Control: no-cache` (revalidated
//!   with its ETag at every load, so a new binary's UI shows at once).
//! - `/static/<version>/<path>`: a year, `immutable`: a new build has a new
//!   version, hence new URLs.
//! - `/static/<path>`, and an older version's URL (a tab left open across an
//!   upgrade): today's file, `no-cache`.
//! - `/favicon.ico`: `static/favicon.ico`, `no-cache`.
//!
//! Each answer is the gzip bytes as built, with `Content-Encoding: gzip`,
//! unless the client refuses gzip (`Accept-Encoding` without it, or with
//! `q=0`): then the file is unpacked for it (miniz's inflater, 14 KB of the
//! binary; no browser asks for that, but a script or a proxy may, and a 406
//! would leave it nothing to read). No `Accept-Encoding` at all means any
//! coding will do (RFC 9110 §12.5.3): gzip. Paths are matched as they come
//! against the table, never decoded or joined onto a directory, so `..`,
//! `%2e%2e` or a NUL name nothing. No token is needed: nothing here is
//! private.
//!
//! Debug builds with `RINGLET_DEV_STATIC=<static dir>` in the daemon's
//! environment read the files from that directory at each request instead,
//! uncompressed and `no-store`, so the UI can be worked on without a
//! rebuild.

use std::borrow::Cow;

use super::routes::envelope_error;

/// Import specifiers resolved as the build resolves them (its own file).
#[cfg(test)]
#[path = "../../build/specifier.rs"]
mod specifier;

/// One embedded file.
pub struct File {
    /// Its path under `static/`, `/`-separated.
    pub path: &'static str,
    /// A gzip member (RFC 1952) of its bytes: a 10-byte header, raw deflate,
    /// an 8-byte trailer.
    pub gzip: &'static [u8],
    /// Its size unpacked.
    pub size: usize,
    /// A weak ETag of its bytes (the same for either encoding).
    pub etag: &'static str,
}

mod embedded {
    use super::File;
    // `VERSION` and `FILES` (sorted by path), written by src/build.rs.
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

pub use embedded::{FILES, VERSION};

/// A year: the longest lifetime caches honour (RFC 9111 §5.2.2.1 advises
/// no more), for URLs whose bytes never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Kept, but revalidated (a 304 when unchanged) before each use.
const REVALIDATE: &str = "no-cache";

/// An answer to a request for a file of the UI.
pub struct Answer {
    pub status: u16,
    pub body: Cow<'static, [u8]>,
    /// Content-Type, Cache-Control and the rest; `rest` adds the
    /// Content-Security-Policy and `nosniff` that every answer gets.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
}

impl Answer {
    fn error(status: u16, kind: &str, message: &str) -> Answer {
        Answer {
            status,
            body: Cow::Owned(envelope_error(status, kind, message)),
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Cache-Control", "no-store".into()),
            ],
        }
    }
}

/// Whether `path` names the UI's files (what [`serve`] answers).
pub fn is_ui_path(path: &str) -> bool {
    matches!(path, "/" | "/index.html" | "/favicon.ico") || path.starts_with("/static/")
}

/// The answer to `path` when it names the UI's files (`/`, `/index.html`,
/// `/favicon.ico`, anything under `/static/`); `None` for every other path.
/// `header` looks a request header up by name.
pub fn serve(path: &str, method: &str, header: &dyn Fn(&str) -> Option<String>) -> Option<Answer> {
    let (name, cache) = match path {
        "/" | "/index.html" => ("index.html", REVALIDATE),
        "/favicon.ico" => ("favicon.ico", REVALIDATE),
        _ => {
            let rest = path.strip_prefix("/static/")?;
            match rest.split_once('/') {
                Some((version, name)) if version == VERSION => (name, IMMUTABLE),
                // Another build's version: today's file, to be revalidated.
                Some((version, name)) if looks_like_version(version) && find(name).is_some() => {
                    (name, REVALIDATE)
                }
                _ => (rest, REVALIDATE),
            }
        }
    };
    if method != "GET" && method != "HEAD" {
        return Some(Answer::error(405, "method_not_allowed", "GET or HEAD only"));
    }
    #[cfg(debug_assertions)]
    if let Some(dir) = std::env::var_os("RINGLET_DEV_STATIC") {
        return Some(dev_file(std::path::Path::new(&dir), name));
    }
    let Some(file) = find(name) else {
        return Some(Answer::error(404, "not_found", &format!("no such file: {path}")));
    };
    let mut headers = vec![
        ("Content-Type", content_type(file.path).into()),
        ("Cache-Control", cache.into()),
        ("ETag", file.etag.into()),
        // Caches must keep the gzip and the unpacked answer apart.
        ("Vary", "Accept-Encoding".into()),
    ];
    if header("If-None-Match").is_some_and(|tags| etag_matches(&tags, file.etag)) {
        return Some(Answer { status: 304, body: Cow::Borrowed(&[]), headers });
    }
    let body = if accepts_gzip(header("Accept-Encoding").as_deref()) {
        headers.push(("Content-Encoding", "gzip".into()));
        Cow::Borrowed(file.gzip)
    } else {
        match inflate(file) {
            Some(bytes) => Cow::Owned(bytes),
            None => {
                let why = format!("{}: the embedded copy is damaged", file.path);
                crate::warn!("http: {why}");
                return Some(Answer::error(500, "internal", &why));
            }
        }
    };
    Some(Answer { status: 200, body, headers })
}

/// The embedded file at `path` (under `static/`).
pub fn find(path: &str) -> Option<&'static File> {
    FILES.binary_search_by(|f| f.path.cmp(path)).ok().map(|i| &FILES[i])
}

/// 16 lower-case hex digits, as `src/build.rs` writes versions.
fn looks_like_version(segment: &str) -> bool {
    segment.len() == 16 && segment.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The file's bytes, unpacked from its gzip member.
fn inflate(file: &File) -> Option<Vec<u8>> {
    let deflate = file.gzip.get(10..file.gzip.len().checked_sub(8)?)?;
    miniz_oxide::inflate::decompress_to_vec_with_limit(deflate, file.size)
        .ok()
        .filter(|bytes| bytes.len() == file.size)
}

/// Whether an `Accept-Encoding` value lets us answer in gzip. Absent: yes
/// (any coding is acceptable); present: only when `gzip` (or `x-gzip`, or
/// `*`) is listed with a non-zero weight, `gzip`'s own entry before `*`'s.
pub fn accepts_gzip(value: Option<&str>) -> bool {
    let Some(value) = value else { return true };
    let (mut gzip, mut any) = (None, None);
    for item in value.split(',') {
        let mut params = item.split(';');
        let coding = params.next().unwrap_or("").trim();
        let weight = params
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(weight > 0.0);
        } else if coding == "*" {
            any = Some(weight > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, RFC 9110
/// §13.1.2: `W/` aside) or is `*`.
fn etag_matches(value: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    value.trim() == "*" || value.split(',').any(|t| bare(t) == bare(etag))
}

/// The Content-Type of a file of the UI, by its name.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.starts_with("LICENSE") || name == "VERSIONS" {
        return "text/plain; charset=utf-8";
    }
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json" | "map") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Debug builds: `name` read from `dir` now. A name with an empty, dot or
/// backslash segment is refused before the disk is touched.
#[cfg(debug_assertions)]
fn dev_file(dir: &std::path::Path, name: &str) -> Answer {
    let safe = !name.contains('\\')
        && !name.contains('\0')
        && name.split('/').all(|c| !c.is_empty() && !c.starts_with('.'));
    match std::fs::read(dir.join(name)).ok().filter(|_| safe) {
        Some(bytes) => Answer {
            status: 200,
            body: Cow::Owned(bytes),
            headers: vec![
                ("Content-Type", content_type(name).into()),
                ("Cache-Control", "no-store".into()),
            ],
        },
        None => Answer::error(404, "not_found", &format!("no such file: {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_every_file_unpacks() {
        assert!(FILES.windows(2).all(|w| w[0].path < w[1].path), "sorted, no duplicates");
        for file in FILES {
            assert_eq!(file.gzip[..3], [0x1f, 0x8b, 8], "{}", file.path);
            assert_eq!(inflate(file).map(|b| b.len()), Some(file.size), "{}", file.path);
        }
        for needed in ["index.html", "favicon.ico", "js/app.js", "vendor/xterm.mjs"] {
            assert!(find(needed).is_some(), "{needed}");
        }
        // app.css is inside index.html.
        for never in ["README.md", "vendor/update.sh", "favicon.py", "app.css"] {
            assert!(find(never).is_none(), "{never}");
        }
    }

    #[test]
    fn index_names_its_files_under_the_version() {
        let html = String::from_utf8(inflate(find("index.html").unwrap()).unwrap()).unwrap();
        assert!(html.contains(&format!("\"/static/{VERSION}/js/app.js\"")), "{html}");
        assert!(!html.contains("\"/static/js"), "{html}");
        assert!(looks_like_version(VERSION));
    }

    /// The stylesheet comes inside the page: no request of its own before
    /// the first layout. Only comments and white space are left out.
    #[test]
    fn index_carries_its_stylesheet() {
        let html = String::from_utf8(inflate(find("index.html").unwrap()).unwrap()).unwrap();
        let inline = html.split_once("<style>").unwrap().1.split_once("</style>").unwrap().0;
        let mut css = include_str!("../../../static/app.css").to_string();
        while let Some(start) = css.find("/*") {
            let end = start + css[start..].find("*/").unwrap() + 2;
            css.replace_range(start..end, "");
        }
        let bare = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(bare(inline), bare(&css));
        assert!(inline.len() < css.len() * 95 / 100, "{} of {} bytes", inline.len(), css.len());
        assert!(!inline.contains("  ") && !inline.contains('\n'), "{inline}");
        assert!(!html.contains("rel=\"stylesheet\""), "{html}");
    }

    /// The page preloads js/app.js, which carries every module the
    /// dashboard (the page `ringlet ui` opens) needs (src/build/web.rs),
    /// at high priority, and nothing else: the other pages and xterm.js
    /// are fetched when used. The page as written, which a debug daemon
    /// with `RINGLET_DEV_STATIC` serves with the modules as written,
    /// preloads each module of that graph, all at once rather than one
    /// level of imports after another.
    #[test]
    fn index_preloads_the_dashboards_module_graph() {
        let prefix = "<link rel=\"modulepreload\" fetchpriority=\"high\" href=\"/static/";
        let preloads = |html: &str| -> Vec<String> {
            let mut found: Vec<String> = html
                .split(prefix)
                .skip(1)
                .map(|rest| rest.split('"').next().unwrap().to_string())
                .collect();
            found.sort();
            found
        };
        let served = String::from_utf8(inflate(find("index.html").unwrap()).unwrap()).unwrap();
        assert_eq!(preloads(&served), [format!("{VERSION}/js/app.js")], "{served}");
        let app = String::from_utf8(inflate(find("js/app.js").unwrap()).unwrap()).unwrap();
        assert_eq!(static_imports(&app), Vec::<String>::new(), "js/app.js imports nothing");

        let source = |path: &str| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
            std::fs::read_to_string(root.join(path)).unwrap()
        };
        let mut graph = std::collections::BTreeSet::new();
        let mut queue = vec!["js/app.js".to_string(), "js/pages/dashboard.js".to_string()];
        while let Some(path) = queue.pop() {
            if !graph.insert(path.clone()) {
                continue;
            }
            let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            for spec in static_imports(&source(&path)) {
                queue.push(specifier::resolve(dir, &spec));
            }
        }
        assert_eq!(preloads(&source("index.html")), graph.into_iter().collect::<Vec<_>>());
    }

    /// The relative specifiers of a module's static imports
    /// (`import ... from "./x.js";` at the start of a line).
    fn static_imports(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("import "))
            .filter_map(|l| l.rsplit_once(" from \"").or_else(|| l.split_once("import \"")))
            .map(|(_, spec)| spec.split('"').next().unwrap().to_string())
            .filter(|spec| spec.starts_with("./") || spec.starts_with("../"))
            .collect()
    }

    #[test]
    fn gzip_is_accepted_unless_refused() {
        for yes in [None, Some("gzip"), Some("gzip, deflate, br"), Some("br;q=1, GZIP;q=0.5")] {
            assert!(accepts_gzip(yes), "{yes:?}");
        }
        assert!(accepts_gzip(Some("*")));
        assert!(accepts_gzip(Some("x-gzip")));
        for no in [Some(""), Some("identity"), Some("gzip;q=0"), Some("*;q=0"), Some("br")] {
            assert!(!accepts_gzip(no), "{no:?}");
        }
        assert!(!accepts_gzip(Some("gzip;q=0, *")), "gzip's own weight wins");
    }

    #[test]
    fn etags_compare_weakly() {
        assert!(etag_matches("W/\"ab\"", "W/\"ab\""));
        assert!(etag_matches("\"x\", \"ab\"", "W/\"ab\""));
        assert!(etag_matches("*", "W/\"ab\""));
        assert!(!etag_matches("\"abc\"", "W/\"ab\""));
    }

    #[test]
    fn content_types_by_name() {
        assert_eq!(content_type("vendor/xterm.mjs"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("vendor/LICENSE.xterm"), "text/plain; charset=utf-8");
        assert_eq!(content_type("vendor/VERSIONS"), "text/plain; charset=utf-8");
        assert_eq!(content_type("favicon.ico"), "image/x-icon");
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }
}
