//! The registry (design.md §8): manifests, scripts, prices, profile templates
//! and a model catalog that arrive after the binary, verified, pinned and
//! usable offline. This module owns the shared shapes: what a registry is
//! ([`Index`], [`Artifact`], [`Kind`]), where its layout puts each kind, and
//! where a synced registry lives under the config dir. A registry is a
//! directory tree with `registry.json` at its root; its **commit** is the
//! SHA-256 of that file's bytes (a file cannot hold its own git hash). The
//! tree has the same relative paths in this repository's registry (`make
//! registry`), on a server, in a bundle and in `<config>/registry/commits/<commit>/`.
//!
//! `<config>/registry/` holds `commits/<commit>/` (each a whole, verified
//! registry), `current`, a relative symlink to one of them that only an atomic
//! rename replaces, `registry.lock` (fd-lock, one sync at a time) and
//! `state.json` (pin, channel, last sync, recent commits). Readers (the
//! manifest catalog, the script resolver, the pricing table, templates and
//! the catalog) only ever look below [`current_dir`].

pub mod bundle;
pub mod changes;
pub mod fetch;
pub mod index;
pub mod runner;
pub mod sign;
pub mod store;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;

/// The `format` this binary writes and reads in `registry.json`.
pub const FORMAT: u32 = 1;

/// What an artifact is; each kind has its own directory in the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `agents/<id>.toml`: an agent manifest.
    Agent,
    /// `providers/<id>.toml`: a provider manifest.
    Provider,
    /// `scripts/<name>.rhai`: a config script.
    Script,
    /// `pricing/litellm-pricing.json`: prices in LiteLLM's format.
    Pricing,
    /// `templates/<name>.toml`: a profile template.
    Template,
    /// `catalog/<provider>.toml`: the models of one provider.
    Catalog,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::Agent, Kind::Provider, Kind::Script, Kind::Pricing, Kind::Template, Kind::Catalog];

    /// The directory (relative to the registry root) that holds this kind.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Agent => "agents",
            Kind::Provider => "providers",
            Kind::Script => "scripts",
            Kind::Pricing => "pricing",
            Kind::Template => "templates",
            Kind::Catalog => "catalog",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Provider => "provider",
            Kind::Script => "script",
            Kind::Pricing => "pricing",
            Kind::Template => "template",
            Kind::Catalog => "catalog",
        }
    }
}

/// The one pricing artifact's path.
pub const PRICING_PATH: &str = "pricing/litellm-pricing.json";

/// One file of a registry, as `registry.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub kind: Kind,
    /// Relative, `/`-separated, inside `kind.dir()`: no `..`, no absolute
    /// path, no empty or `.` component.
    pub path: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// `registry.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: u32,
    pub channel: String,
    /// Sorted by path; paths are unique.
    pub artifacts: Vec<Artifact>,
}

/// `<config>/registry`.
pub fn root(paths: &Paths) -> PathBuf {
    paths.config_dir.join("registry")
}

/// The commit directory `current` points at, if a sync ever completed.
/// Every reader of synced artifacts starts here.
pub fn current_dir(paths: &Paths) -> Option<PathBuf> {
    current_in(&root(paths))
}

/// [`current_dir`] for the registry dir `root` (`<config>/registry`), for
/// readers without a whole [`Paths`] (the proxy child's price table). Only
/// a link of the form `commits/<name>` counts, to a real directory (not a
/// link) in a real `commits/`: a `current` edited by hand or by another
/// program to lead elsewhere (`/etc`, `commits/../..`, an absolute path, a
/// commit dir that is itself a link) is no registry, never followed.
pub fn current_in(root: &Path) -> Option<PathBuf> {
    let target = std::fs::read_link(root.join("current")).ok()?;
    let name = target.to_str()?.strip_prefix("commits/")?;
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        return None;
    }
    let commits = root.join("commits");
    let real_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    let dir = commits.join(name);
    (real_dir(&commits) && real_dir(&dir)).then_some(dir)
}

/// The commit `current` points at (its directory's name).
pub fn current_commit(paths: &Paths) -> Option<String> {
    let dir = current_dir(paths)?;
    dir.file_name().and_then(|n| n.to_str()).map(String::from)
}

/// Where an artifact of `kind` named `file` sits in a registry rooted at `dir`.
pub fn artifact_path(dir: &Path, kind: Kind, file: &str) -> PathBuf {
    dir.join(kind.dir()).join(file)
}
