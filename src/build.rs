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
//! Each option is tried first: a trial link of an empty program, with
//! warnings fatal (an older ld only warns about an unknown `-z` option), by
//! the same rustc and for the same target as the real build, so the probe
//! meets the linker the binary will meet. When a trial fails, that option
//! is left out.

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
    for (option, opt_out) in OPTIONS {
        println!("cargo:rerun-if-env-changed={opt_out}");
        if linux_gnu && native && env::var_os(opt_out).is_none() && trial_link(&out, option) {
            println!("cargo:rustc-link-arg-bins={option}");
        }
    }
}

/// Whether rustc links an empty program with `option`, without a warning.
fn trial_link(out: &Path, option: &str) -> bool {
    let source = out.join("probe.rs");
    if fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg(&source)
        .arg("-o")
        .arg(out.join("probe"))
        .args(["--target", &env::var("TARGET").unwrap_or_default()])
        .args(["-C", &format!("link-arg={option}"), "-C", "link-arg=-Wl,--fatal-warnings"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
