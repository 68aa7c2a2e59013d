//! Build script: two linker options, for native Linux glibc builds only.
//!
//! `ringlet` is a position-independent executable, so the loader patches
//! about 9,000 pointers at every start, each described by a 24-byte RELA
//! entry (0.22 MB of the binary). `-z pack-relative-relocs` stores them as
//! DT_RELR bitmaps instead: the binary is 0.2 MB smaller and the loader has
//! less to read. It needs GNU ld 2.38+ (or lld) and glibc 2.36+. A binary
//! built with it asks for glibc 2.36+ at run time by name
//! (`GLIBC_ABI_DT_RELR`), so an older system refuses it with a clear message
//! rather than misloading it. `RINGLET_NO_RELR=1` turns it off.
//!
//! `--icf=all` lets lld fold functions and constants whose bytes are
//! identical (generic code instantiated for types of the same layout, for
//! the most part): 58 KB. Rust makes no promise that two functions have
//! distinct addresses, and nothing here compares function pointers.
//! Only lld has it; rustc links with its own lld on x86_64 Linux since 1.90,
//! and a distro toolchain may use GNU ld.
//!
//! The unwinder (`_Unwind_*`, which std's backtraces call) is linked in
//! from GCC's static `libgcc_eh.a` rather than taken from `libgcc_s.so.1`:
//! one shared library fewer for the loader to find, map and relocate at
//! every start (with the constructor it runs), about 0.1 ms of a 2 ms
//! `ringlet --help`, for 30 KB. `-lgcc_s`, which std still passes after it,
//! then has nothing left to give and `--as-needed` drops it.
//! `RINGLET_SHARED_LIBGCC=1` turns it off.
//!
//! Each option is tried first: a trial link of an empty program, with
//! warnings fatal (an older ld only warns about an unknown `-z` option), by
//! the same rustc and for the same target as the real build, so the probe
//! meets the linker the binary will meet. When a trial fails, that option
//! is left out.
//!
//! It also embeds the web UI ([`embed_static`]): every file under `static/`
//! gzip-compressed at build time, `index.html`'s `/static/` references made
//! versioned and its stylesheet written into it, and a table of them that
//! `src/daemon/http/assets.rs` includes.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const OPTIONS: &[(&str, &str)] =
    &[("-Wl,-z,pack-relative-relocs", "RINGLET_NO_RELR"), ("-Wl,--icf=all", "RINGLET_NO_ICF")];

fn main() {
    println!("cargo:rerun-if-changed=src/build.rs");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    // A cross build links with another toolchain than the one probed here.
    let native = var("TARGET") == var("HOST");
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else { return };
    embed_static(&out);
    for (option, opt_out) in OPTIONS {
        println!("cargo:rerun-if-env-changed={opt_out}");
        let arg = format!("link-arg={option}");
        if linux_gnu && native && env::var_os(opt_out).is_none() && trial_link(&out, &["-C", &arg])
        {
            println!("cargo:rustc-link-arg-bins={option}");
        }
    }
    println!("cargo:rerun-if-env-changed=RINGLET_SHARED_LIBGCC");
    if linux_gnu && native && env::var_os("RINGLET_SHARED_LIBGCC").is_none() {
        static_unwinder(&out);
    }
}

/// Links GCC's static unwinder (`libgcc_eh.a`, found by asking the C
/// compiler that links, as gcc itself would) whole, when a trial link with
/// it works.
fn static_unwinder(out: &Path) {
    let cc = env::var("RUSTC_LINKER").or_else(|_| env::var("CC")).unwrap_or_else(|_| "cc".into());
    let Ok(found) = Command::new(&cc).arg("-print-file-name=libgcc_eh.a").output() else { return };
    let path = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
    // A compiler that does not have it echoes the bare name back.
    let Some(dir) = path.parent().filter(|_| path.is_absolute() && path.is_file()) else {
        return;
    };
    let search = format!("native={}", dir.display());
    let lib = "static:+whole-archive=gcc_eh";
    if trial_link(out, &["-L", &search, "-l", lib]) {
        println!("cargo:rustc-link-search={search}");
        println!("cargo:rustc-link-lib={lib}");
    }
}

/// Whether rustc links an empty program with `args`, without a warning.
fn trial_link(out: &Path, args: &[&str]) -> bool {
    let source = out.join("probe.rs");
    if fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg(&source)
        .arg("-o")
        .arg(out.join("probe"))
        .args(["--target", &env::var("TARGET").unwrap_or_default()])
        .args(args)
        .args(["-C", "link-arg=-Wl,--fatal-warnings"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Files under `static/` that are not part of the UI: notes for developers,
/// the vendoring script and the favicon's renderer.
const NOT_SERVED: &[&str] = &["README.md", "vendor/update.sh", "favicon.py"];

/// Writes `$OUT_DIR/assets.rs`: the UI's version (a hash of every file's
/// path and bytes, so any change gives every URL a new one) and one entry a
/// file: its path under `static/`, its gzip bytes (`include_bytes!` of a
/// file written beside), its size unpacked, and an ETag. Compressed here,
/// once, at miniz's best level, so the daemon serves every file as it is and
/// the binary carries only the compressed bytes. In `index.html` every
/// `"/static/` becomes `"/static/<version>/`; the scripts import each other
/// relatively, so they inherit the prefix and the browser may keep them all
/// for a year. `index.html`'s stylesheets come inside it ([`inline_styles`]).
fn embed_static(out: &Path) {
    println!("cargo:rerun-if-changed=static");
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("static");
    let mut files = Vec::new();
    walk(&root, "", &mut files);
    inline_styles(&mut files);
    files.sort();
    let mut version = Fnv::new();
    for (path, bytes) in &files {
        version.write(path.as_bytes());
        version.write(&[0]);
        version.write(&(bytes.len() as u64).to_le_bytes());
        version.write(bytes);
    }
    let version = format!("{:016x}", version.0);
    let dir = out.join("static");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    // Debug builds compress faster (the build script is not optimised
    // there); release builds, which ship, take the best level.
    let level = if env::var("PROFILE").as_deref() == Ok("release") { 10 } else { 6 };
    let mut table = String::new();
    table.push_str("// Generated by src/build.rs from static/: do not edit.\n");
    table.push_str(&format!("pub const VERSION: &str = \"{version}\";\n"));
    table.push_str("pub static FILES: &[File] = &[\n");
    for (i, (path, bytes)) in files.iter().enumerate() {
        let bytes = if path == "index.html" { versioned(bytes, &version) } else { bytes.clone() };
        let mut etag = Fnv::new();
        etag.write(&bytes);
        let gz = dir.join(format!("{i}.gz"));
        fs::write(&gz, gzip(&bytes, level))
            .unwrap_or_else(|e| panic!("writing {}: {e}", gz.display()));
        table.push_str(&format!(
            "    File {{ path: {path:?}, gzip: include_bytes!({gz:?}), size: {}, etag: \"W/\\\"{:016x}\\\"\" }},\n",
            bytes.len(),
            etag.0,
        ));
    }
    table.push_str("];\n");
    let target = out.join("assets.rs");
    fs::write(&target, table).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}

/// Every file under `dir` as `(path relative to static/, bytes)`, leaving
/// out dotfiles (and dot directories) and [`NOT_SERVED`]. A name that would
/// need escaping in a URL stops the build: the daemon matches paths as
/// they come, never decoding them.
fn walk(dir: &Path, prefix: &str, files: &mut Vec<(String, Vec<u8>)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            panic!("static/{prefix}{}: not UTF-8", name.to_string_lossy())
        };
        if name.starts_with('.') {
            continue;
        }
        let rel = format!("{prefix}{name}");
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            panic!("static/{rel}: a served file's name is letters, digits, `.`, `_` and `-`");
        }
        let path = entry.path();
        let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if meta.is_dir() {
            walk(&path, &format!("{rel}/"), files);
        } else if !NOT_SERVED.contains(&rel.as_str()) {
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.push((rel, bytes));
        }
    }
}

/// Writes each stylesheet `index.html` links (`<link rel="stylesheet"
/// href="/static/NAME">`, as written there) into it as a `<style>`
/// element, and drops the file from the table: nothing else asks for it.
/// The page is the one file every load fetches anyway (revalidated, then a
/// 304); a stylesheet of its own would be one more request, on a new
/// connection, that the first layout, and so the scripts, wait for. Worth
/// tens of milliseconds of a cold load on a loaded 2-core machine (the
/// page-load figure of `make bench`). The Content-Security-Policy allows
/// inline styles already (xterm.js needs them); scripts stay files.
fn inline_styles(files: &mut Vec<(String, Vec<u8>)>) {
    const OPEN: &str = "<link rel=\"stylesheet\" href=\"/static/";
    let Some(page) = files.iter().position(|(path, _)| path == "index.html") else { return };
    let mut html = String::from_utf8(files[page].1.clone()).expect("static/index.html: not UTF-8");
    let mut inlined = Vec::new();
    while let Some(start) = html.find(OPEN) {
        let rest = &html[start + OPEN.len()..];
        let name = rest.split('"').next().unwrap_or_default().to_string();
        let end =
            start + OPEN.len() + rest.find('>').expect("static/index.html: an unclosed <link>") + 1;
        let Some((_, bytes)) = files.iter().find(|(path, _)| *path == name) else {
            panic!("static/index.html links /static/{name}, which is not there")
        };
        let css = std::str::from_utf8(bytes).expect("a stylesheet is UTF-8");
        assert!(!css.contains("</"), "static/{name}: `</` would end its <style> early");
        html.replace_range(start..end, &format!("<style>\n{css}</style>"));
        inlined.push(name);
    }
    files[page].1 = html.into_bytes();
    files.retain(|(path, _)| !inlined.contains(path));
}

/// `index.html` with every `/static/` reference (in a quoted attribute)
/// under the version.
fn versioned(html: &[u8], version: &str) -> Vec<u8> {
    let html = String::from_utf8_lossy(html);
    html.replace("\"/static/", &format!("\"/static/{version}/"))
        .replace("'/static/", &format!("'/static/{version}/"))
        .into_bytes()
}

/// A gzip member (RFC 1952) of `data`: a fixed header (no name, no time,
/// so the build is reproducible), raw deflate, CRC-32 and length.
fn gzip(data: &[u8], level: u8) -> Vec<u8> {
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, if level >= 9 { 2 } else { 0 }, 3];
    gz.extend(miniz_oxide::deflate::compress_to_vec(data, level));
    gz.extend(crc32(data).to_le_bytes());
    gz.extend((data.len() as u32).to_le_bytes());
    gz
}

/// CRC-32 (IEEE, reflected), bit by bit: the UI is a few hundred KB, once
/// per build.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// FNV-1a, 64 bits: names a version of the files, nothing secret, and the
/// same on every toolchain (std's hasher makes no such promise).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}
