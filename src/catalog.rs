//! The model catalog: per provider, the models it serves with their context
//! window, the key of their price in LiteLLM's table, and the other names
//! the provider accepts for them (`catalog/<provider-id>.toml`).
//!
//! The catalog is the rich source about models; a provider manifest's
//! `[models]` keeps only what a profile needs, its `default` (and the
//! short `available` list older manifests carry). What a provider knows is
//! the union of both, so a user manifest without a catalog still works, and
//! a unit test keeps every built-in manifest's models inside the built-in
//! catalog, so the two cannot drift apart.
//!
//! Files layer by provider id: built-in (`manifests/catalog/`, embedded) <
//! the synced registry (`<registry>/current/catalog/`) < the user's
//! `<config>/catalog.d/`; a later file replaces a provider's whole list. A
//! broken file is a warning naming file and line, and the rest loads.
//! Nothing is cached: the files are a few KiB and read when asked, so a sync
//! or an edit takes effect on the next request.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::manifests::ProviderManifest;
use crate::paths::Paths;
use crate::usage::pricing::Pricing;

/// The built-in catalog files, by file name (`make registry` ships the same files).
pub const BUILTIN: &[(&str, &str)] = &[
    ("anthropic.toml", include_str!("../manifests/catalog/anthropic.toml")),
    ("openai.toml", include_str!("../manifests/catalog/openai.toml")),
    ("openrouter.toml", include_str!("../manifests/catalog/openrouter.toml")),
    ("minimax.toml", include_str!("../manifests/catalog/minimax.toml")),
    ("minimax-openai.toml", include_str!("../manifests/catalog/minimax-openai.toml")),
    ("zai.toml", include_str!("../manifests/catalog/zai.toml")),
    ("zai-openai.toml", include_str!("../manifests/catalog/zai-openai.toml")),
];

/// One catalog file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderModels {
    /// The provider id these models belong to.
    pub provider: String,
    #[serde(default)]
    pub models: Vec<Model>,
}

/// One model of a provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The name the provider's API takes.
    pub id: String,
    /// Tokens of context the model takes.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// Its key in LiteLLM's price table (`zai/glm-5.1`); absent: the id.
    #[serde(default)]
    pub pricing_key: Option<String>,
    /// Other names the provider accepts for it (dated ids, short names).
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Every provider's models, and where each list came from.
#[derive(Debug, Clone, Default)]
pub struct ModelCatalog {
    pub providers: BTreeMap<String, (ProviderModels, Option<PathBuf>)>,
    /// One line per file that could not be used, naming file and line.
    pub warnings: Vec<String>,
}

/// One model as callers see it (`GET /api/models`, `providers inspect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelView {
    pub provider: String,
    pub id: String,
    pub context_window: Option<u64>,
    pub pricing_key: Option<String>,
    pub aliases: Vec<String>,
    /// USD per million input / output tokens, when the price table knows it.
    pub input_usd_per_mtok: Option<f64>,
    pub output_usd_per_mtok: Option<f64>,
    /// The provider manifest's default model.
    pub default: bool,
    /// `builtin`, or the file the list came from.
    pub source: String,
}

/// Reply to `Request::Models`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelList {
    pub models: Vec<ModelView>,
    pub warnings: Vec<String>,
}

/// `<config>/catalog.d`.
pub fn user_dir(paths: &Paths) -> PathBuf {
    paths.config_dir.join("catalog.d")
}

impl ModelCatalog {
    /// Built-ins < registry < user, by provider id.
    pub fn load(paths: &Paths) -> ModelCatalog {
        let registry = crate::registry::current_dir(paths).map(|d| d.join("catalog"));
        ModelCatalog::load_from(registry.as_deref(), &user_dir(paths))
    }

    fn load_from(registry: Option<&Path>, user: &Path) -> ModelCatalog {
        let mut catalog = ModelCatalog::default();
        for (name, text) in BUILTIN {
            match parse(Path::new(name), text) {
                Ok(m) => {
                    catalog.providers.insert(m.provider.clone(), (m, None));
                }
                Err(e) => catalog.warnings.push(format!("built-in {e}")),
            }
        }
        for dir in registry.into_iter().chain([user]) {
            for (path, text) in toml_files(dir, &mut catalog.warnings) {
                match parse(&path, &text) {
                    Ok(m) => {
                        catalog.providers.insert(m.provider.clone(), (m, Some(path)));
                    }
                    Err(e) => catalog.warnings.push(format!("{e}; skipped")),
                }
            }
        }
        catalog
    }

    /// The catalog's models of `provider` (none when it has no file).
    pub fn models(&self, provider: &str) -> &[Model] {
        self.providers.get(provider).map_or(&[], |(m, _)| m.models.as_slice())
    }

    /// Every name the provider is known to take: the catalog's ids and
    /// aliases, then the manifest's `available` and `default`.
    pub fn known_names(&self, provider: &ProviderManifest) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for m in self.models(&provider.id) {
            names.push(m.id.clone());
            names.extend(m.aliases.iter().cloned());
        }
        names.extend(provider.models.available.iter().cloned());
        names.extend(provider.models.default.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        names
    }

    /// A warning when `model` is not a name the provider is known to take,
    /// naming the closest known ones; `None` when it is, or when nothing is
    /// known about the provider's models (nothing to compare with).
    pub fn check_model(&self, provider: &ProviderManifest, model: &str) -> Option<String> {
        let known = self.known_names(provider);
        if known.is_empty() || known.iter().any(|k| k == model) {
            return None;
        }
        let closest = closest(model, &known, 3);
        Some(format!(
            "model `{model}` is not in the catalog of provider `{}` (closest: {}); using it as given",
            provider.id,
            closest.join(", ")
        ))
    }

    /// The views of `provider`'s models (all providers when `None`), with
    /// prices from `pricing`; `default` marks each manifest's default.
    pub fn views(
        &self,
        provider: Option<&str>,
        manifests: &crate::manifests::Catalog,
        pricing: &Pricing,
    ) -> Vec<ModelView> {
        let mut out = Vec::new();
        for (id, (list, path)) in &self.providers {
            if provider.is_some_and(|p| p != id) {
                continue;
            }
            let default = manifests.provider(id).and_then(|p| p.manifest.models.default.clone());
            let source = path.as_ref().map_or("builtin".into(), |p| p.display().to_string());
            for m in &list.models {
                let key = m.pricing_key.as_deref().unwrap_or(&m.id);
                let price = pricing.resolve(key).map(|(_, p)| p);
                let per_mtok = |v: Option<f64>| v.map(|usd| (usd * 1e6 * 1e4).round() / 1e4);
                out.push(ModelView {
                    provider: id.clone(),
                    id: m.id.clone(),
                    context_window: m.context_window,
                    pricing_key: m.pricing_key.clone(),
                    aliases: m.aliases.clone(),
                    input_usd_per_mtok: per_mtok(price.and_then(|p| p.input_cost_per_token)),
                    output_usd_per_mtok: per_mtok(price.and_then(|p| p.output_cost_per_token)),
                    default: default.as_deref() == Some(m.id.as_str()),
                    source: source.clone(),
                });
            }
        }
        out
    }
}

/// The `*.toml` files of `dir`, sorted, with their text; an unreadable file
/// is a warning. A missing directory holds none.
pub(crate) fn toml_files(dir: &Path, warnings: &mut Vec<String>) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for path in crate::manifests::toml_files(dir) {
        match fs::read_to_string(&path) {
            Ok(text) => out.push((path, text)),
            Err(e) => warnings.push(format!("{}: {e}; skipped", path.display())),
        }
    }
    out
}

/// The line of the first line that starts with `prefix` (after blanks), for
/// errors about a value TOML itself accepted.
pub(crate) fn line_of(text: &str, prefix: &str) -> Option<usize> {
    text.lines().position(|l| l.trim_start().starts_with(prefix)).map(|i| i + 1)
}

/// `<path>:<line>: <what>`, or `<path>: <what>` when the line is unknown.
pub(crate) fn at(path: &Path, line: Option<usize>, what: impl std::fmt::Display) -> anyhow::Error {
    match line {
        Some(l) => anyhow!("{}:{l}: {what}", path.display()),
        None => anyhow!("{}: {what}", path.display()),
    }
}

/// Checks an id the way manifests do: `[a-z0-9][a-z0-9_-]*`, at most 64.
pub(crate) fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn parse(path: &Path, text: &str) -> Result<ProviderModels> {
    let m: ProviderModels = crate::config::from_toml(path, text)?;
    if !valid_id(&m.provider) {
        bail!(at(
            path,
            line_of(text, "provider"),
            format_args!("provider: `{}` must match [a-z0-9][a-z0-9_-]*", m.provider)
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for model in &m.models {
        for name in std::iter::once(&model.id).chain(&model.aliases) {
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                bail!(at(
                    path,
                    line_of(text, "id"),
                    format_args!("models: invalid name `{}`", name.escape_debug())
                ));
            }
            if !seen.insert(name.as_str()) {
                // The second mention is the duplicate.
                let quoted = format!("\"{name}\"");
                let line = text
                    .match_indices(&quoted)
                    .nth(1)
                    .map(|(o, _)| crate::config::line_col(text, o).0);
                bail!(at(path, line, format_args!("models: `{name}` is named twice")));
            }
        }
    }
    Ok(m)
}

/// The `n` names in `known` closest to `name`: by edit distance, ignoring
/// case, with names that contain it (or that it contains) first; ties in
/// the order given; of names equal but for case, only the first.
pub fn closest(name: &str, known: &[String], n: usize) -> Vec<String> {
    let lower = name.to_lowercase();
    let mut seen = std::collections::HashSet::new();
    let mut scored: Vec<(usize, usize, &String)> = known
        .iter()
        .filter(|k| seen.insert(k.to_lowercase()))
        .enumerate()
        .map(|(i, k)| {
            let kl = k.to_lowercase();
            let contained = !lower.is_empty() && (kl.contains(&lower) || lower.contains(&kl));
            let d = edit_distance(&lower, &kl);
            (if contained { d.min(1) } else { d }, i, k)
        })
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, _, k)| k.clone()).collect()
}

/// Levenshtein distance over chars, one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_cleanly_and_price_every_model() {
        let none = Path::new("/nonexistent-ringlet-dir");
        let catalog = ModelCatalog::load_from(None, none);
        assert!(catalog.warnings.is_empty(), "{:?}", catalog.warnings);
        let pricing = Pricing::embedded();
        for (id, (list, _)) in &catalog.providers {
            assert!(!list.models.is_empty(), "{id}");
            for m in &list.models {
                let key = m.pricing_key.as_deref().unwrap_or(&m.id);
                // The exact key: a catalog entry names LiteLLM's own.
                assert!(pricing.resolve(key).is_some_and(|(k, _)| k == key), "{id}: {key}");
                assert!(m.context_window.is_some_and(|c| c >= 100_000), "{id}: {}", m.id);
            }
        }
        // The file names are the provider ids.
        for (file, text) in BUILTIN {
            let m = parse(Path::new(file), text).unwrap();
            assert_eq!(format!("{}.toml", m.provider), *file);
        }
    }

    /// One source of truth: every model a built-in provider manifest names
    /// is in the catalog, and every provider with an API has a catalog.
    #[test]
    fn builtin_manifests_name_only_catalog_models() {
        let none = Path::new("/nonexistent-ringlet-dir");
        let catalog = ModelCatalog::load_from(None, none);
        let manifests = crate::manifests::Catalog::load_layers(none, None, none);
        for p in &manifests.providers {
            let p = &p.manifest;
            if p.kind == crate::manifests::ProviderType::SelfAuth {
                continue;
            }
            let ids: Vec<&str> = catalog.models(&p.id).iter().map(|m| m.id.as_str()).collect();
            for model in p.models.available.iter().chain(&p.models.default) {
                assert!(
                    ids.contains(&model.as_str()),
                    "{}: {model} not in catalog/{}.toml",
                    p.id,
                    p.id
                );
            }
        }
    }

    #[test]
    fn later_layers_replace_a_provider_and_broken_files_warn() {
        let dir = std::env::temp_dir().join(format!("ringlet-catalog-{}", std::process::id()));
        let (reg, user) = (dir.join("registry"), dir.join("user"));
        fs::create_dir_all(&reg).unwrap();
        fs::create_dir_all(&user).unwrap();
        fs::write(reg.join("zai.toml"), "provider = \"zai\"\n[[models]]\nid = \"glm-9\"\n")
            .unwrap();
        fs::write(reg.join("new.toml"), "provider = \"new\"\n[[models]]\nid = \"n1\"\n").unwrap();
        fs::write(user.join("new.toml"), "provider = \"new\"\n[[models]]\nid = \"n2\"\n").unwrap();
        fs::write(user.join("bad.toml"), "provider = \"x\"\n[[models]]\nidd = 1\n").unwrap();
        fs::write(
            user.join("twice.toml"),
            "provider = \"y\"\n[[models]]\nid = \"a\"\naliases = [\"a\"]\n",
        )
        .unwrap();
        let c = ModelCatalog::load_from(Some(&reg), &user);
        assert_eq!(c.models("zai")[0].id, "glm-9");
        assert_eq!(c.models("new")[0].id, "n2");
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("bad.toml:3:"), "{:?}", c.warnings);
        assert!(
            c.warnings[1].contains("twice.toml:4: models: `a` is named twice"),
            "{:?}",
            c.warnings
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn closest_names() {
        let known: Vec<String> =
            ["MiniMax-M2.1", "MiniMax-M2", "glm-5.1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(closest("MiniMax-M2.2", &known, 2), ["MiniMax-M2.1", "MiniMax-M2"]);
        assert_eq!(closest("glm", &known, 1), ["glm-5.1"]);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
