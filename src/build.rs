//! Build script: one linker option, for Linux glibc builds only.
//!
//! `ringlet` is a position-independent executable, so the loader patches
//! about 9,000 pointers at every start, each described by a 24-byte RELA
//! entry (0.22 MB of the binary). `-z pack-relative-relocs` stores them as
//! DT_RELR bitmaps instead: the binary is 0.2 MB smaller and the loader has
//! less to read. It needs GNU ld 2.38+ (or lld) and glibc 2.36+; a trial
//! link of an empty program with the same C compiler decides, with warnings
//! fatal (an older ld only warns about an unknown `-z` option), and when it
//! fails nothing changes. A binary built with it asks for glibc 2.36+ at run
//! time by name (`GLIBC_ABI_DT_RELR`), so an older system refuses it with a
//! clear message rather than misloading it. `RINGLET_NO_RELR=1` turns it off.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const OPTION: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=src/build.rs");
    println!("cargo:rerun-if-env-changed=RINGLET_NO_RELR");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    // A cross build links with another toolchain than the `cc` found here.
    let native = var("TARGET") == var("HOST");
    if !linux_gnu || !native || env::var_os("RINGLET_NO_RELR").is_some() {
        return;
    }
    if trial_link() {
        println!("cargo:rustc-link-arg-bins={OPTION}");
    }
}

/// Whether `cc` links a program with the option, without a warning.
fn trial_link() -> bool {
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else { return false };
    let source = out.join("relr-probe.c");
    if fs::write(&source, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    Command::new(env::var_os("CC").unwrap_or_else(|| "cc".into()))
        .arg(&source)
        .arg("-o")
        .arg(out.join("relr-probe"))
        .args(["-pie", "-fPIE", OPTION, "-Wl,--fatal-warnings"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
