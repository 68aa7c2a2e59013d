//! From a profile to what an agent run needs: the script's `ctx`, the
//! rendered files written into the profile home (confined to it; owned by
//! Ringlet: what an agent wrote into them is dropped, except the records of
//! its own state the script lists in `keep`; secrets only at run time and
//! only in 0600 files), and the environment of the isolation strategy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use super::{Profile, relative_path};
use crate::config::Config;
use crate::fsutil::{self, Beneath, create_private_dir};
use crate::manifests::{AgentManifest, ProviderManifest, ProviderType, Strategy};
use crate::paths::Paths;
use crate::proxy::config as proxy;
use crate::scripting::{self, Rendered};

/// The placeholders a script may put in files, env values and arguments.
const KEY: &str = "${API_KEY}";
const KEY_LAST20: &str = "${API_KEY_LAST20}";

/// Shown instead of the key in dry runs and previews.
pub const REDACTED: &str = "<redacted>";

/// How much an agent may do before it asks, pinned per profile so it never
/// depends on the agent's own default (Claude Code 2.1.332 starts API-key
/// profiles in auto mode and token profiles in manual mode). Each script
/// maps it onto its agent's settings (scripts/README.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PermissionMode {
    /// Ask before editing files, running commands or fetching.
    #[default]
    Ask,
    /// Edit files without asking; ask before commands.
    AcceptEdits,
    /// Read and plan only; no edits.
    Plan,
    /// The agent decides what is low-risk and runs it (Claude Code's auto
    /// mode; Codex runs inside its own sandbox without asking).
    Auto,
    /// Never ask, no agent-side sandbox.
    Bypass,
}

impl PermissionMode {
    pub const ALL: [PermissionMode; 5] = [
        PermissionMode::Ask,
        PermissionMode::AcceptEdits,
        PermissionMode::Plan,
        PermissionMode::Auto,
        PermissionMode::Bypass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Ask => "ask",
            PermissionMode::AcceptEdits => "accept-edits",
            PermissionMode::Plan => "plan",
            PermissionMode::Auto => "auto",
            PermissionMode::Bypass => "bypass",
        }
    }

    /// Parses a `--permission-mode` value; the error lists the choices.
    pub fn parse(text: &str) -> Result<PermissionMode> {
        Self::ALL.into_iter().find(|m| m.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
            anyhow::anyhow!(
                "unknown permission mode `{}`; choose one of: {} (default: ask)",
                text.escape_debug(),
                names.join(", ")
            )
        })
    }
}

/// The `ctx` map a profile script sees (scripts/README.md).
pub fn context(
    profile: &Profile,
    agent: &AgentManifest,
    provider: &ProviderManifest,
    config: &Config,
) -> Value {
    let table = |t: &toml::Table| serde_json::to_value(t).unwrap_or(Value::Object(Map::new()));
    // A proxied profile's agent talks to its proxy only: the script sees
    // the proxy's URL as the endpoint (and `${API_KEY}` becomes the local
    // token, see `Services::agent_key`), so no script can hand the agent
    // the upstream's URL or key.
    let proxy_url = proxy::proxied_port(profile)
        .and_then(|port| proxy::family(provider).ok().map(|f| proxy::proxy_url(f, port)));
    json!({
        "profile": {
            "alias": profile.alias,
            "home": profile.home.display().to_string(),
            "model": profile.model,
            "endpoint": proxy_url.clone().or_else(|| profile.endpoint.clone()),
            "hooks_config": profile.hooks,
            "mcp_servers": profile.mcp_servers,
            "proxy_url": proxy_url,
            "permission_mode": profile.permission_mode.as_str(),
        },
        "provider": {
            "id": provider.id,
            "name": provider.name,
            "type": provider.kind.as_str(),
            "auth_env_key": provider.auth.env_key,
        },
        "agent": { "id": agent.id, "name": agent.name, "binary": agent.binary },
        "prefs": {
            "hooks": table(&config.hooks),
            "mcp_servers": table(&config.mcp_servers),
            "custom": table(&config.custom),
            "settings": config.agents.get(&agent.id).map_or(Value::Object(Map::new()), |a| table(&a.settings)),
        },
    })
}

/// Resolves the profile's script and runs it.
pub fn render(
    paths: &Paths,
    profile: &Profile,
    agent: &AgentManifest,
    provider: &ProviderManifest,
    config: &Config,
) -> Result<Rendered> {
    let script = scripting::resolve(paths, &profile.script)?;
    let rendered = scripting::render(&script, &context(profile, agent, provider, config))?;
    for path in rendered.files.keys() {
        relative_path(path).with_context(|| format!("{}: files", script.name))?;
    }
    for path in &rendered.remove {
        relative_path(path).with_context(|| format!("{}: remove", script.name))?;
        if rendered.files.keys().any(|f| f == path || f.starts_with(&format!("{path}/"))) {
            bail!("{}: remove names `{path}`, which holds a rendered file", script.name);
        }
    }
    if provider.kind == ProviderType::SelfAuth && mentions_key(&rendered) {
        bail!(
            "{}: uses ${{API_KEY}}, but provider `{}` has no key (the agent logs in by itself)",
            script.name,
            provider.id
        );
    }
    Ok(rendered)
}

fn mentions_key(r: &Rendered) -> bool {
    let has = |s: &String| s.contains(KEY) || s.contains(KEY_LAST20);
    r.files.values().any(has) || r.env.values().any(has) || r.args.iter().any(has)
}

/// What a key placeholder becomes: the key, or [`REDACTED`] for previews.
#[derive(Clone, Copy)]
pub enum KeyValue<'a> {
    Key(Option<&'a str>),
    Redacted,
}

/// Replaces the placeholders in `text`. Returns the text and whether it now
/// holds (part of) the secret.
pub fn substitute(text: &str, key: KeyValue<'_>) -> Result<(String, bool)> {
    if !text.contains("${API_KEY") {
        return Ok((text.to_string(), false));
    }
    let (full, last20) = match key {
        KeyValue::Redacted => (REDACTED.to_string(), REDACTED.to_string()),
        KeyValue::Key(Some(k)) => {
            let start = k.char_indices().rev().nth(19).map_or(0, |(i, _)| i);
            (k.to_string(), k[start..].to_string())
        }
        KeyValue::Key(None) => {
            bail!("the script uses ${{API_KEY}}, but this profile has no stored key")
        }
    };
    let out = text.replace(KEY_LAST20, &last20).replace(KEY, &full);
    Ok((out, matches!(key, KeyValue::Key(_))))
}

/// The variables of the isolation strategy: `HOME` for `home-wrapper`, plus
/// every `config_env` variable as an absolute path in the profile home.
pub fn isolation_env(profile: &Profile, agent: &AgentManifest) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if profile.strategy == Strategy::HomeWrapper {
        env.insert("HOME".to_string(), profile.home.display().to_string());
    }
    for (var, dir) in &agent.profile.config_env {
        env.insert(var.clone(), profile.home.join(dir).display().to_string());
    }
    env.insert("RINGLET_PROFILE".to_string(), profile.alias.clone());
    env
}

/// Creates the profile home (0700) and every `config_env` directory in it.
/// Returns the home opened (no link at its name) for [`write_files_in`].
pub fn ensure_home(profile: &Profile, agent: &AgentManifest) -> Result<Beneath> {
    create_private_dir(&profile.home)?;
    let home = Beneath::open(&profile.home)?;
    for dir in agent.profile.config_env.values() {
        home.create_dir_all(&relative_path(dir)?)?;
    }
    Ok(home)
}

/// One file as it will be written.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FileOut {
    pub path: String,
    /// Octal, e.g. "0600".
    pub mode: String,
    pub content: String,
    /// Whether records the agent keeps in the file were carried over from
    /// the one on disk (the script's `keep` list).
    pub merged: bool,
}

/// Writes the rendered files into the profile home, replacing what is
/// there: an agent that wrote a hook, a status line or an approval policy
/// into its settings inside the sandbox loses it here, before the next
/// (perhaps unsandboxed) run. Only the records a file's `keep` list names
/// are carried over from the file on disk. Files holding the secret are 0600.
/// A file on disk that is already exactly what would be written (content,
/// mode, a regular file of ours with no other name) is left in place.
pub fn write_files(home: &Path, rendered: &Rendered, key: Option<&str>) -> Result<()> {
    write_files_in(&Beneath::open(home)?, rendered, key)
}

/// [`write_files`] into a home already opened (by [`ensure_home`]).
pub fn write_files_in(home: &Beneath, rendered: &Rendered, key: Option<&str>) -> Result<()> {
    let mut dirs = Dirs { home, open: Vec::new() };
    for rel in &rendered.remove {
        let rel_path = relative_path(rel)?;
        let (parent, name) = parent_and_name(&rel_path)?;
        let removed = match dirs.get(parent, false) {
            Ok(Some(dir)) => dir.remove_all(name),
            Ok(None) => Ok(()), // its directory is missing: nothing to remove
            Err(e) => Err(e),
        };
        removed.with_context(|| format!("removing {rel} from the profile home"))?;
    }
    for (rel, text) in &rendered.files {
        let rel_path = relative_path(rel)?;
        let (parent, name) = parent_and_name(&rel_path)?;
        let dir = dirs
            .get(parent, true)
            .and_then(|d| d.context("created but not found"))
            .with_context(|| format!("writing {rel} in the profile home"))?;
        let (merged, _) = keep_from_disk(Some(dir), name, rel, text, rendered.keep.get(rel))?;
        let (content, secret) = substitute(&merged, KeyValue::Key(key))?;
        let mode = if secret { 0o600 } else { 0o644 };
        // A file already as rendered (the usual case from one run to the
        // next) is left as it is: replacing it changes nothing but costs
        // two fsyncs and a rename, most of a render's time.
        if dir.holds(name, content.as_bytes(), mode) {
            continue;
        }
        dir.write_atomic(name, content.as_bytes(), mode)
            .with_context(|| format!("writing {rel} in the profile home"))?;
    }
    Ok(())
}

/// The directories one render reaches beneath the profile home, each
/// walked (`openat2`, no link on the way) once and kept open for the
/// render: a Claude render removed four entries and read and wrote two
/// files in `.claude/`, and walked to it seven times. What a kept fd
/// reaches is what a fresh walk at that moment would have: the directory
/// itself, never a link put in its place (a directory moved by someone
/// else is the same race a walk followed by a write already has).
struct Dirs<'a> {
    home: &'a Beneath,
    open: Vec<(PathBuf, Beneath)>,
}

impl Dirs<'_> {
    /// The directory `parent` (the home when empty); `None` when it is
    /// missing and not `create`.
    fn get(&mut self, parent: &Path, create: bool) -> Result<Option<&Beneath>> {
        if parent.as_os_str().is_empty() {
            return Ok(Some(self.home));
        }
        let at = match self.open.iter().position(|(p, _)| p == parent) {
            Some(at) => at,
            None => {
                let Some(dir) = self.home.dir(parent, create)? else { return Ok(None) };
                self.open.push((parent.to_path_buf(), dir));
                self.open.len() - 1
            }
        };
        Ok(Some(&self.open[at].1))
    }
}

/// A relative file path's directory part and its name (as a path).
fn parent_and_name(rel: &Path) -> Result<(&Path, &Path)> {
    let name = rel.file_name().with_context(|| format!("{}: no file name", rel.display()))?;
    Ok((rel.parent().unwrap_or(Path::new("")), Path::new(name)))
}

/// The files as a dry run shows them: with the kept records of what is on
/// disk, key redacted.
pub fn preview_files(home: &Path, rendered: &Rendered) -> Result<Vec<FileOut>> {
    let mut out = Vec::new();
    // Before the first run the home does not exist: nothing to merge with.
    let beneath = if home.exists() { Some(Beneath::open(home)?) } else { None };
    for (rel, text) in &rendered.files {
        let rel_path = relative_path(rel)?;
        let target = home.join(&rel_path);
        let (merged, was_merged) =
            keep_from_disk(beneath.as_ref(), &rel_path, rel, text, rendered.keep.get(rel))?;
        let secret = merged.contains("${API_KEY");
        let (content, _) = substitute(&merged, KeyValue::Redacted)?;
        out.push(FileOut {
            path: target.display().to_string(),
            mode: if secret { "0600".into() } else { "0644".into() },
            content,
            merged: was_merged,
        });
    }
    Ok(out)
}

/// Substitutes the placeholders in env values and arguments.
pub fn substitute_all(
    env: &BTreeMap<String, String>,
    args: &[String],
    key: KeyValue<'_>,
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let env =
        env.iter().map(|(k, v)| Ok((k.clone(), substitute(v, key)?.0))).collect::<Result<_>>()?;
    let args = args.iter().map(|a| Ok(substitute(a, key)?.0)).collect::<Result<_>>()?;
    Ok((env, args))
}

/// The text to write for `rel`: the script's, plus the records `keep`
/// names from the file on disk (when both are JSON objects or TOML tables;
/// top-level keys the script sets win). Without a `keep` list (or a home)
/// the disk is not even read. Returns the text and whether records were
/// carried over.
/// The agent can write the file on disk: it is read without following a
/// link, non-blocking, regular files only, at most [`fsutil::READ_CAP`]
/// bytes; anything else counts as absent and is replaced.
fn keep_from_disk(
    home: Option<&Beneath>,
    rel_path: &Path,
    rel: &str,
    text: &str,
    keep: Option<&Vec<String>>,
) -> Result<(String, bool)> {
    let (Some(home), Some(keep)) = (home, keep) else { return Ok((text.to_string(), false)) };
    let Some(bytes) = home.read_capped(rel_path, fsutil::READ_CAP)? else {
        return Ok((text.to_string(), false));
    };
    // Not UTF-8: corrupt, replaced like an unparsable file.
    let Ok(existing) = String::from_utf8(bytes) else { return Ok((text.to_string(), false)) };
    let patterns: Vec<Vec<&str>> = keep.iter().map(|p| p.split('.').collect()).collect();
    if rel.ends_with(".json") {
        let Ok(Value::Object(new)) = serde_json::from_slice::<Value>(text.as_bytes()) else {
            return Ok((text.to_string(), false));
        };
        // A file the agent corrupted is replaced.
        let Ok(Value::Object(old)) = serde_json::from_slice::<Value>(existing.as_bytes()) else {
            return Ok((text.to_string(), false));
        };
        let mut kept = pick(&old, &patterns);
        kept.extend(new);
        let mut out = serde_json::to_string_pretty(&Value::Object(kept))?;
        out.push('\n');
        return Ok((out, true));
    }
    if rel.ends_with(".toml") {
        let Ok(new) = toml::from_str::<toml::Table>(text) else {
            return Ok((text.to_string(), false));
        };
        let Ok(old) = toml::from_str::<toml::Table>(&existing) else {
            return Ok((text.to_string(), false));
        };
        let Ok(Value::Object(old)) = serde_json::to_value(&old) else {
            return Ok((text.to_string(), false));
        };
        let mut kept: toml::Table = serde_json::from_value(Value::Object(pick(&old, &patterns)))
            .context("carrying TOML records over")?;
        kept.extend(new);
        return Ok((toml::to_string(&kept)?, true));
    }
    Ok((text.to_string(), false))
}

/// The part of `map` the key paths select: a path's components name a key
/// each, `*` any key; a path that ends at a key keeps its whole value, and
/// objects left empty are dropped. Everything else is left out.
fn pick(map: &Map<String, Value>, patterns: &[Vec<&str>]) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in map {
        let tails: Vec<Vec<&str>> = patterns
            .iter()
            .filter(|p| p.first().is_some_and(|c| *c == "*" || c == key))
            .map(|p| p[1..].to_vec())
            .collect();
        if tails.is_empty() {
            continue;
        }
        if tails.iter().any(Vec::is_empty) {
            out.insert(key.clone(), value.clone());
        } else if let Value::Object(inner) = value {
            let inner = pick(inner, &tails);
            if !inner.is_empty() {
                out.insert(key.clone(), Value::Object(inner));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ringlet-render-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn substitution() {
        let key = "sk-ant-api03-0123456789abcdefghijKLMNOPQRSTUVWXYZ";
        let (s, secret) =
            substitute("a ${API_KEY} b ${API_KEY_LAST20}", KeyValue::Key(Some(key))).unwrap();
        assert_eq!(s, format!("a {key} b KLMNOPQRSTUVWXYZ").replace("b KLM", "b ghijKLM"));
        assert!(secret);
        let (s, _) = substitute("${API_KEY_LAST20}", KeyValue::Key(Some("short"))).unwrap();
        assert_eq!(s, "short");
        assert_eq!(substitute("x", KeyValue::Key(None)).unwrap(), ("x".into(), false));
        assert!(substitute("${API_KEY}", KeyValue::Key(None)).is_err());
        assert_eq!(substitute("${API_KEY}", KeyValue::Redacted).unwrap().0, REDACTED);
    }

    #[test]
    fn files_are_owned_but_kept_records_survive() {
        use std::os::unix::fs::PermissionsExt;
        let home = tmp("merge");
        fs::create_dir_all(home.join(".claude")).unwrap();
        fs::write(
            home.join(".claude/.claude.json"),
            r#"{"projects":{"/w":{"trusted":true,"allowedTools":["Bash"]},"/x":{"mcpServers":{}}},
                "mcpServers":{"old":{}},"bypass":true,"numStartups":3}"#,
        )
        .unwrap();
        fs::write(home.join(".claude/settings.json"), r#"{"statusLine":{"command":"x"}}"#).unwrap();
        let mut r = Rendered::default();
        r.files.insert(
            ".claude/.claude.json".into(),
            r#"{"mcpServers":{},"k":"${API_KEY_LAST20}"}"#.into(),
        );
        r.keep.insert(
            ".claude/.claude.json".into(),
            vec!["numStartups".into(), "projects.*.trusted".into(), "mcpServers".into()],
        );
        r.files.insert(".claude/settings.json".into(), r#"{"hooks":{}}"#.into());
        r.files.insert("c/config.toml".into(), "model = \"m\"\n".into());
        r.keep.insert("c/config.toml".into(), vec!["projects.*.trust_level".into()]);
        r.files.insert("plain.txt".into(), "hello".into());
        write_files(&home, &r, Some("0123456789012345678901234")).unwrap();
        let read = |p: &str| -> Value {
            serde_json::from_str(&fs::read_to_string(home.join(p)).unwrap()).unwrap()
        };
        assert_eq!(
            read(".claude/.claude.json"),
            json!({"projects": {"/w": {"trusted": true}}, "numStartups": 3,
                   "mcpServers": {}, "k": "56789012345678901234"}),
            "only the kept records stay; keys the script sets replace"
        );
        assert_eq!(read(".claude/settings.json"), json!({"hooks": {}}), "owned: replaced");
        let mode = |p: &str| fs::metadata(home.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(".claude/.claude.json"), 0o600);
        assert_eq!(mode("plain.txt"), 0o644);
        fs::write(
            home.join("c/config.toml"),
            "notify = [\"sh\"]\n[projects.\"/w\"]\ntrust_level = \"trusted\"\nmodel = \"old\"\n",
        )
        .unwrap();
        write_files(&home, &r, None).unwrap_err(); // the .claude.json needs the key
        r.files.remove(".claude/.claude.json");
        r.keep.remove(".claude/.claude.json");
        write_files(&home, &r, None).unwrap();
        let t: toml::Table =
            toml::from_str(&fs::read_to_string(home.join("c/config.toml")).unwrap()).unwrap();
        assert_eq!(t["model"].as_str(), Some("m"));
        assert_eq!(t["projects"]["/w"]["trust_level"].as_str(), Some("trusted"));
        assert!(t["projects"]["/w"].get("model").is_none() && t.get("notify").is_none(), "{t}");
        fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn a_file_already_as_rendered_is_left_in_place_and_any_other_is_replaced() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
        let home = tmp("unchanged");
        let mut r = Rendered::default();
        r.files.insert("a/settings.json".into(), "{\"k\":\"${API_KEY}\"}".into());
        r.files.insert("plain.txt".into(), "hello".into());
        let key = Some("sk-0123456789abcdefghij");
        write_files(&home, &r, key).unwrap();
        let ino = |p: &str| fs::symlink_metadata(home.join(p)).unwrap().ino();
        let mode = |p: &str| fs::metadata(home.join(p)).unwrap().permissions().mode() & 0o7777;
        let (secret, plain) = (ino("a/settings.json"), ino("plain.txt"));
        write_files(&home, &r, key).unwrap();
        assert_eq!(ino("a/settings.json"), secret, "an unchanged file is not written again");
        assert_eq!(ino("plain.txt"), plain);

        // Another key: other bytes, replaced.
        write_files(&home, &r, Some("sk-another-key-0123456789")).unwrap();
        assert_ne!(ino("a/settings.json"), secret);
        let read = |p: &str| fs::read_to_string(home.join(p)).unwrap();
        assert_eq!(read("a/settings.json"), "{\"k\":\"sk-another-key-0123456789\"}");
        // The same bytes with a wider mode: replaced, the mode set again.
        fs::set_permissions(home.join("plain.txt"), fs::Permissions::from_mode(0o666)).unwrap();
        write_files(&home, &r, key).unwrap();
        assert_ne!(ino("plain.txt"), plain);
        assert_eq!((read("plain.txt").as_str(), mode("plain.txt")), ("hello", 0o644));
        // The same bytes under a second name (a hard link): replaced, so
        // the rendered name no longer shares the file.
        let (plain, other) = (ino("plain.txt"), home.join("other"));
        fs::hard_link(home.join("plain.txt"), &other).unwrap();
        write_files(&home, &r, key).unwrap();
        assert_ne!(ino("plain.txt"), plain);
        assert_eq!(fs::metadata(&other).unwrap().nlink(), 1);
        // The same bytes behind a link at the name: replaced by a file.
        fs::remove_file(home.join("plain.txt")).unwrap();
        symlink(&other, home.join("plain.txt")).unwrap();
        write_files(&home, &r, key).unwrap();
        assert!(fs::symlink_metadata(home.join("plain.txt")).unwrap().is_file());
        // Same length, other bytes: replaced.
        fs::write(home.join("plain.txt"), "HELLO").unwrap();
        write_files(&home, &r, key).unwrap();
        assert_eq!(read("plain.txt"), "hello");
        fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn removed_paths_go_and_links_are_not_followed() {
        let home = tmp("remove");
        let outside = tmp("remove-outside");
        fs::write(outside.join("keep.txt"), "mine").unwrap();
        fs::create_dir_all(home.join("a/rules/deep")).unwrap();
        fs::write(home.join("a/rules/deep/x.rules"), "allow").unwrap();
        std::os::unix::fs::symlink(&outside, home.join("a/rules/link")).unwrap();
        fs::write(home.join("a/file"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, home.join("a/tools")).unwrap();
        let mut r = Rendered {
            remove: vec!["a/rules".into(), "a/file".into(), "a/tools".into(), "a/none".into()],
            ..Default::default()
        };
        write_files(&home, &r, None).unwrap();
        assert_eq!(fs::read_dir(home.join("a")).unwrap().count(), 0);
        assert_eq!(fs::read_to_string(outside.join("keep.txt")).unwrap(), "mine");
        // A link among the parents is refused, and the target left alone.
        std::os::unix::fs::symlink(&outside, home.join("b")).unwrap();
        r.remove = vec!["b/keep.txt".into()];
        assert!(write_files(&home, &r, None).is_err());
        assert!(outside.join("keep.txt").exists());
        fs::remove_dir_all(&home).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn writes_never_follow_links_or_leave_home() {
        let home = tmp("links");
        let outside = tmp("links-outside");
        std::os::unix::fs::symlink(&outside, home.join("link")).unwrap();
        for bad in ["link/x.json", "../x", "/etc/x", "a/../../x"] {
            let mut r = Rendered::default();
            r.files.insert(bad.into(), "{}".into());
            assert!(write_files(&home, &r, None).is_err(), "{bad} written");
        }
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        fs::remove_dir_all(&home).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }
}
