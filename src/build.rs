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
//! It also embeds the web UI (`build/web.rs`): every file under `static/`
//! gzip-compressed at build time, in a table that
//! `src/daemon/http/assets.rs` includes.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "build/web.rs"]
mod web;

const OPTIONS: &[(&str, &str)] =
    &[("-Wl,-z,pack-relative-relocs", "RINGLET_NO_RELR"), ("-Wl,--icf=all", "RINGLET_NO_ICF")];

fn main() {
    println!("cargo:rerun-if-changed=src/build.rs");
    println!("cargo:rerun-if-changed=src/build");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    // A cross build links with another toolchain than the one probed here.
    let native = var("TARGET") == var("HOST");
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else { return };
    web::embed_static(&out);
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
