//! The web UI's files as a browser gets them from a real daemon: every file
//! under `static/` gzip-compressed with its content type, versioned URLs
//! cached for a year, the page revalidated, ETags and 304, HEAD, a client
//! that refuses gzip, `/favicon.ico` without a token, the exact
//! Content-Security-Policy, and paths that try to leave `static/`.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;

use crate::util::Env;

/// Import specifiers resolved as the build resolves them (its own file).
#[path = "../src/build/specifier.rs"]
mod specifier;
use crate::util::http::{Answer, request};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// What the binary should serve: every file under the checkout's `static/`
/// but dotfiles and the few that are not the UI (src/build.rs).
fn source_files() -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("{prefix}{name}");
            if entry.path().is_dir() {
                walk(&entry.path(), &format!("{rel}/"), out);
            } else if !["README.md", "vendor/update.sh", "favicon.py"].contains(&rel.as_str()) {
                out.push(rel);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("static"), "", &mut files);
    files.sort();
    files
}

fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    request(addr, "GET", path, headers, b"")
}

fn gz(addr: SocketAddr, path: &str) -> Answer {
    get(addr, path, &[("Accept-Encoding", "gzip, deflate, br")])
}

/// A response header's value (the first of that name).
fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.head.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The bytes of a gzip member.
fn gunzip(body: &[u8]) -> Vec<u8> {
    assert_eq!(body[..3], [0x1f, 0x8b, 8], "a gzip member");
    miniz_oxide::inflate::decompress_to_vec(&body[10..body.len() - 8]).expect("valid deflate")
}

fn expected_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap();
    if name.starts_with("LICENSE") || name == "VERSIONS" {
        return "text/plain; charset=utf-8";
    }
    match path.rsplit_once('.').unwrap().1 {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        other => panic!("{path}: a file type this test does not know ({other}): add it"),
    }
}

/// The page, unpacked, and the version its `/static/` URLs carry.
fn page(addr: SocketAddr) -> (String, String) {
    let page = gz(addr, "/");
    assert_eq!(page.status, 200, "{}", page.head);
    let html = String::from_utf8(gunzip(&page.body)).unwrap();
    let at = html.find("\"/static/").expect("a /static/ URL in index.html") + 9;
    let version = html[at..].split('/').next().unwrap().to_string();
    assert!(
        version.len() == 16 && version.bytes().all(|b| b.is_ascii_hexdigit()),
        "{version}: {html}"
    );
    (html, version)
}

#[test]
fn every_file_is_served_gzip_with_its_type_and_a_year_of_cache() {
    let env = Env::new("assets-all");
    let (addr, _token) = env.http();
    let (html, version) = page(addr);
    let files = source_files();
    for needed in ["index.html", "favicon.ico", "favicon.svg", "js/app.js", "vendor/xterm.mjs"] {
        assert!(files.iter().any(|f| f == needed), "{needed} in static/");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    // The stylesheet comes inside the page (src/build/web.rs), and is not
    // a file of its own.
    assert!(html.contains("<style>:root{"), "app.css inside the page");
    assert_eq!(gz(addr, &format!("/static/{version}/app.css")).status, 404);
    // The dashboard's modules come inside js/app.js: the test below.
    let bundled = dashboard_graph();
    for file in files.iter().filter(|f| *f != "app.css") {
        let answer = gz(addr, &format!("/static/{version}/{file}"));
        assert_eq!(answer.status, 200, "{file}: {}", answer.head);
        assert_eq!(header(&answer, "Content-Type"), Some(expected_type(file)), "{file}");
        assert_eq!(header(&answer, "Content-Encoding"), Some("gzip"), "{file}");
        assert_eq!(header(&answer, "Vary"), Some("Accept-Encoding"), "{file}");
        let cache = header(&answer, "Cache-Control");
        assert_eq!(cache, Some("public, max-age=31536000, immutable"), "{file}");
        assert!(header(&answer, "ETag").is_some_and(|t| t.starts_with("W/\"")), "{file}");
        assert_eq!(header(&answer, "Content-Security-Policy"), Some(CSP), "{file}");
        assert_eq!(header(&answer, "X-Content-Type-Options"), Some("nosniff"), "{file}");
        let bytes = gunzip(&answer.body);
        if file != "index.html" && !bundled.contains(file) {
            assert_eq!(bytes, fs::read(root.join(file)).unwrap(), "{file}: the checkout's bytes");
        }
        assert!(answer.body.len() < bytes.len() || bytes.len() < 600, "{file}: compressed");
    }
    // Not the UI: never served.
    for never in ["README.md", "vendor/update.sh", "favicon.py"] {
        let answer = gz(addr, &format!("/static/{version}/{never}"));
        assert_eq!(answer.status, 404, "{never}");
        assert_eq!(answer.json()["error"]["code"], 404);
    }
}

/// Every URL the page names is under the version and answers; every
/// relative import in a script resolves under the same version.
#[test]
fn the_page_names_versioned_files_and_all_of_them_resolve() {
    let env = Env::new("assets-page");
    let (addr, _token) = env.http();
    let (html, version) = page(addr);
    let page = gz(addr, "/");
    assert_eq!(header(&page, "Cache-Control"), Some("no-cache"));
    assert_eq!(header(&page, "Content-Type"), Some("text/html; charset=utf-8"));
    assert!(!html.contains("<script>"), "no inline script: the CSP forbids it");
    let urls: Vec<&str> =
        html.split("\"/static/").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert!(urls.len() >= 2, "{html}");
    let mut queue: Vec<String> = Vec::new();
    for url in urls {
        assert!(url.starts_with(&format!("{version}/")), "{url} is not versioned");
        queue.push(format!("/static/{url}"));
    }
    let mut seen = BTreeSet::new();
    while let Some(url) = queue.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let answer = gz(addr, &url);
        assert_eq!(answer.status, 200, "{url}");
        if !url.ends_with(".js") && !url.ends_with(".mjs") {
            continue;
        }
        let text = String::from_utf8(gunzip(&answer.body)).unwrap();
        for spec in relative_imports(&text) {
            let dir = &url[..url.rfind('/').unwrap()];
            queue.push(format!("/{}", specifier::resolve(dir, &spec)));
        }
    }
    assert!(seen.contains(&format!("/static/{version}/js/app.js")), "{seen:?}");
    assert!(seen.iter().all(|u| u.starts_with(&format!("/static/{version}/"))), "{seen:?}");
}

/// js/app.js and the modules it imports, in the checkout: the dashboard's
/// module graph.
fn dashboard_graph() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut graph = BTreeSet::new();
    let mut queue = vec!["js/app.js".to_string()];
    while let Some(path) = queue.pop() {
        if graph.insert(path.clone()) {
            let text = fs::read_to_string(root.join(&path)).unwrap();
            let dir = &path[..path.rfind('/').unwrap()];
            queue.extend(relative_imports(&text).iter().map(|spec| specifier::resolve(dir, spec)));
        }
    }
    graph
}

/// The page's one script carries the dashboard's modules (src/build/web.rs):
/// every line of each, and no import of them. Each module's own URL gives
/// its exports, exactly, from that one instance, for the pages loaded
/// later (a second instance of the live stream would never hear an event);
/// a page that imports them loads and shares them in a real browser
/// (tests/browser).
#[test]
fn the_dashboards_modules_come_inside_app_js() {
    let env = Env::new("assets-bundle");
    let (addr, _token) = env.http();
    let (_, version) = page(addr);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let served = |file: &str| {
        let answer = gz(addr, &format!("/static/{version}/{file}"));
        assert_eq!(answer.status, 200, "{file}");
        String::from_utf8(gunzip(&answer.body)).unwrap()
    };
    let app = served("js/app.js");
    assert!(relative_imports(&app).is_empty(), "js/app.js imports nothing statically");
    let graph = dashboard_graph();
    assert!(graph.len() >= 5, "{graph:?}");
    for file in graph.iter().filter(|f| *f != "js/app.js") {
        let source = fs::read_to_string(root.join(file)).unwrap();
        let mut rest = app.as_str();
        for line in source.lines().filter(|l| !l.starts_with("import ")) {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let at = rest.find(line).unwrap_or_else(|| panic!("{file}: `{line}` not in js/app.js"));
            rest = &rest[at + line.len()..];
        }
        let exports: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .map(|l| l.trim_start_matches("async ").split([' ', '(']).nth(1).unwrap())
            .collect();
        let shim = served(file);
        let up = if file.matches('/').count() == 1 { "./" } else { "../" };
        assert!(shim.contains(&format!("import {{ bundled }} from \"{up}app.js\";")), "{shim}");
        let line = format!("export const {{ {} }} = bundled[\"{file}\"];", exports.join(", "));
        assert!(shim.contains(&line), "{file}: {shim}");
        assert!(app.contains(&format!("  \"{file}\": __module_")), "{file} in `bundled`");
    }
}

/// The literal relative specifiers of a script's imports: `from "./x.js"`,
/// `import "./x.js"`, `import("./x.js")`.
fn relative_imports(text: &str) -> Vec<String> {
    let mut specs = Vec::new();
    for opener in ["from \"", "import \"", "import(\"", "from '", "import '", "import('"] {
        for piece in text.split(opener).skip(1) {
            let quote = opener.chars().last().unwrap();
            let spec = piece.split(quote).next().unwrap();
            if spec.starts_with("./") || spec.starts_with("../") {
                specs.push(spec.to_string());
            }
        }
    }
    specs
}

#[test]
fn etags_give_304_and_head_gives_the_head_alone() {
    let env = Env::new("assets-304");
    let (addr, _token) = env.http();
    let (_, version) = page(addr);
    for path in ["/", &format!("/static/{version}/js/app.js"), "/favicon.ico"] {
        let first = gz(addr, path);
        let etag = header(&first, "ETag").unwrap().to_string();
        let again = get(addr, path, &[("If-None-Match", &etag), ("Accept-Encoding", "gzip")]);
        assert_eq!(again.status, 304, "{path}: {}", again.head);
        assert!(again.body.is_empty(), "{path}");
        assert_eq!(header(&again, "ETag"), Some(etag.as_str()));
        assert_eq!(header(&again, "Cache-Control"), header(&first, "Cache-Control"));
        let other =
            get(addr, path, &[("If-None-Match", "W/\"0000\""), ("Accept-Encoding", "gzip")]);
        assert_eq!(other.status, 200, "{path}: another version's tag");
        assert_eq!(other.body, first.body);

        let head = request(addr, "HEAD", path, &[("Accept-Encoding", "gzip")], b"");
        assert_eq!(head.status, 200, "{path}");
        assert!(head.body.is_empty(), "{path}: HEAD has no body");
        let length = first.body.len().to_string();
        assert_eq!(header(&head, "Content-Length"), Some(length.as_str()), "{path}");
        assert_eq!(header(&head, "Content-Type"), header(&first, "Content-Type"));
    }
    let post = request(addr, "POST", "/static/js/app.js", &[], b"");
    assert_eq!(post.status, 405, "{}", post.head);
}

/// A client that refuses gzip gets the bytes as they are; one that sends
/// no Accept-Encoding at all accepts any coding (RFC 9110 §12.5.3).
#[test]
fn a_client_that_refuses_gzip_gets_plain_bytes() {
    let env = Env::new("assets-identity");
    let (addr, _token) = env.http();
    let (_, version) = page(addr);
    let source = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("static/vendor/xterm.mjs"));
    let source = source.unwrap();
    let url = format!("/static/{version}/vendor/xterm.mjs");
    for refusal in ["identity", "gzip;q=0", "br", ""] {
        let plain = get(addr, &url, &[("Accept-Encoding", refusal)]);
        assert_eq!(plain.status, 200, "{refusal:?}");
        assert_eq!(header(&plain, "Content-Encoding"), None, "{refusal:?}: {}", plain.head);
        assert_eq!(header(&plain, "Vary"), Some("Accept-Encoding"));
        assert!(plain.body == source, "{refusal:?}: the file's own bytes");
    }
    let any = get(addr, &url, &[]);
    assert_eq!(header(&any, "Content-Encoding"), Some("gzip"));
    assert_eq!(gunzip(&any.body), source);
}

#[test]
fn favicon_csp_and_unversioned_paths_need_no_token() {
    let env = Env::new("assets-favicon");
    let (addr, token) = env.http();
    let icon = get(addr, "/favicon.ico", &[]);
    assert_eq!(icon.status, 200, "{}", icon.head);
    assert_eq!(header(&icon, "Content-Type"), Some("image/x-icon"));
    let bytes = gunzip(&icon.body);
    assert_eq!(bytes[..4], [0, 0, 1, 0], "an ICO file");
    assert_eq!(header(&icon, "Cache-Control"), Some("no-cache"));

    // Unversioned (and another build's version, from a tab left open
    // across an upgrade): today's file, revalidated at each use.
    for path in ["/static/js/app.js", "/static/0123456789abcdef/js/app.js", "/index.html"] {
        let answer = gz(addr, path);
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(header(&answer, "Cache-Control"), Some("no-cache"), "{path}");
    }
    // The same policy on the page, on a file and on the API.
    let api =
        request(addr, "GET", "/api/agents", &[("Authorization", &format!("Bearer {token}"))], b"");
    assert_eq!(api.status, 200);
    for answer in [&gz(addr, "/"), &gz(addr, "/static/js/app.js"), &api] {
        assert_eq!(header(answer, "Content-Security-Policy"), Some(CSP), "{}", answer.head);
    }
    assert_eq!(header(&api, "Cache-Control"), Some("no-store"));
    // Anything else still wants the token.
    assert_eq!(get(addr, "/api/agents", &[]).status, 401);
    assert_eq!(get(addr, "/app.js", &[]).status, 401);
}

#[test]
fn paths_out_of_static_name_nothing() {
    let env = Env::new("assets-traversal");
    let (addr, _token) = env.http();
    let (_, version) = page(addr);
    for path in [
        "/static/../Cargo.toml".to_string(),
        "/static/%2e%2e/Cargo.toml".into(),
        "/static/%2E%2E/%2E%2E/Cargo.toml".into(),
        "/static/..%2fCargo.toml".into(),
        "/static/js/../../Cargo.toml".into(),
        format!("/static/{version}/../../Cargo.toml"),
        format!("/static/{version}/%2e%2e/src/main.rs"),
        "/static/js/app.js%00".into(),
        "/static/%00".into(),
        "/static/".into(),
        "/static//etc/passwd".into(),
        "/static/.hidden".into(),
        "/static/nope.js".into(),
    ] {
        let answer = gz(addr, &path);
        assert!(matches!(answer.status, 400 | 404), "{path}: {}", answer.head);
        let text = String::from_utf8_lossy(&answer.body);
        assert!(!text.contains("[package]") && !text.contains("root:"), "{path}: {text}");
        assert_eq!(answer.json()["success"], false, "{path}");
    }
}

/// Debug builds only (the tests' binary): `RINGLET_DEV_STATIC` serves the
/// UI from a directory, unpacked and never cached, and refuses the same
/// escapes.
#[test]
fn a_debug_daemon_serves_the_ui_from_the_dev_directory() {
    let env = Env::new("assets-dev");
    let dir = env.root.join("ui");
    fs::create_dir_all(dir.join("js")).unwrap();
    fs::write(dir.join("index.html"), "<p>dev page</p>").unwrap();
    fs::write(dir.join("js/x.js"), "export const x = 1;").unwrap();
    fs::write(env.root.join("secret.txt"), "not for you").unwrap();
    env.cmd(&["daemon"]).env("RINGLET_DEV_STATIC", &dir).ok();
    let (addr, _token) = env.http();
    let page = gz(addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.body, b"<p>dev page</p>");
    assert_eq!(header(&page, "Cache-Control"), Some("no-store"));
    let script = gz(addr, "/static/js/x.js");
    assert_eq!(script.body, b"export const x = 1;");
    assert_eq!(header(&script, "Content-Type"), Some("text/javascript; charset=utf-8"));
    for path in
        ["/static/../secret.txt", "/static/js/../../secret.txt", "/static/%2e%2e/secret.txt"]
    {
        let answer = gz(addr, path);
        assert_eq!(answer.status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&answer.body).contains("not for you"), "{path}");
    }
}

/// A browser loads the page's files without the token, then calls the API
/// with it, on the same few connections: a connection that got a file stays
/// open for the next request (one that got anything else without the token
/// is closed after it, as before), and its API call is answered there.
#[test]
fn a_connection_that_got_a_file_stays_open_for_the_api_calls_after_it() {
    use std::io::{Read, Write};
    let env = Env::new("assets-keepalive");
    let (addr, token) = env.http();
    let host = format!("Host: 127.0.0.1:{}\r\n", addr.port());
    let answer = crate::util::http::read_answer_head;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    for path in ["/", "/favicon.ico"] {
        write!(s, "GET {path} HTTP/1.1\r\n{host}Accept-Encoding: gzip\r\n\r\n").unwrap();
        let head = answer(&mut s);
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(!head.contains("connection: close"), "{path}: {head}");
    }
    write!(s, "GET /api/dashboard HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\n\r\n")
        .unwrap();
    let head = answer(&mut s);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "with the token, kept: {head}");

    // Without the token, an API answer still ends the connection.
    let mut stranger = std::net::TcpStream::connect(addr).unwrap();
    stranger.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(stranger, "GET /api/dashboard HTTP/1.1\r\n{host}\r\n").unwrap();
    let head = answer(&mut stranger);
    assert!(head.starts_with("http/1.1 401") && head.contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    assert_eq!(stranger.read_to_end(&mut rest).unwrap(), 0, "closed after the 401");
}
