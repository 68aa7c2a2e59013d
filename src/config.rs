//! `config.toml`: the user's preferences (design.md §3).
//!
//! A missing file means defaults. A present file must be right: unknown keys,
//! wrong types and syntax errors are errors that name the file, the line and
//! the key, never a silent fall back to defaults (a typo such as
//! `idle_timeout_sec` would otherwise quietly do nothing).

use std::fs;
use std::io;
use std::path::{Component, Path};

use anyhow::{Result, anyhow};
use serde::Deserialize;

/// The whole file. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub defaults: Defaults,
    pub detect: DetectConfig,
    pub terminal: TerminalConfig,
    pub run: RunConfig,
    pub sandbox: SandboxConfig,
    /// Hook definitions by name, used by `profiles create --hooks` (later issue).
    pub hooks: toml::Table,
    /// MCP server definitions by name, used by `--mcp` (later issue).
    pub mcp_servers: toml::Table,
    /// Free-form values handed to Rhai scripts as `ctx.prefs.custom`.
    pub custom: toml::Table,
    /// Per agent id: `[agents.<id>.settings]`, merged by the agent's script
    /// into the settings file it renders (`ctx.prefs.settings`). The only way
    /// to set a key there: the file itself is rewritten at every render.
    pub agents: std::collections::BTreeMap<String, AgentPrefs>,
    /// Price overrides by model name, in LiteLLM's field names
    /// (`[pricing."my-model"] input_cost_per_token = 3e-6`).
    pub pricing: std::collections::BTreeMap<String, crate::usage::pricing::ModelPrice>,
    /// `[proxy]`: which program serves the profiles' routing proxies.
    pub proxy: ProxyConfig,
    /// `[tls]`: what outbound HTTPS (proxy upstreams) trusts besides the
    /// system's CA store.
    pub tls: TlsConfig,
    /// `[registry]`: where `registry sync` fetches from, and how it checks.
    pub registry: RegistryConfig,
}

/// `[registry]` (design.md §8, README "Registry").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// The registry's root URL, a template: `{channel}` becomes the channel,
    /// `{ref}` the pin (the channel when nothing is pinned). No default until
    /// the project publishes a registry.
    pub url: Option<String>,
    /// The channel synced when `--channel` is not given.
    pub channel: String,
    /// A minisign public key (the base64 line of a `.pub` file): when set,
    /// `registry.json` must carry a valid `registry.json.minisig` by it.
    pub public_key: Option<String>,
    /// A URL without `public_key` is refused unless this is set; every such
    /// sync then warns.
    pub allow_unsigned: bool,
    /// `off`: the network is touched only by `registry sync`; `daily`: the
    /// daemon also syncs once a day while it runs.
    pub auto_sync: AutoSync,
    /// The longest one download (`registry.json`, one artifact) may take,
    /// connecting included.
    pub timeout_secs: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            url: None,
            channel: "stable".into(),
            public_key: None,
            allow_unsigned: false,
            auto_sync: AutoSync::Off,
            timeout_secs: 30,
        }
    }
}

/// `[registry] auto_sync`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoSync {
    #[default]
    Off,
    Daily,
}

/// `[tls]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM bundle (a corporate or test CA) trusted beside the system's
    /// CAs; without it `SSL_CERT_FILE` is used when set.
    pub ca_file: Option<std::path::PathBuf>,
}

/// `[proxy]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// `builtin` (Ringlet's own `proxy serve`) or `litellm`.
    pub backend: ProxyBackend,
    /// The LiteLLM proxy's command (`litellm` on PATH when unset).
    pub litellm_command: Option<String>,
}

/// `[proxy] backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyBackend {
    #[default]
    Builtin,
    Litellm,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Seconds without any activity after which the daemon exits.
    pub idle_timeout_secs: u64,
    pub http_port: u16,
    pub http_bind: String,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig { idle_timeout_secs: 300, http_port: 8765, http_bind: "127.0.0.1".into() }
    }
}

/// `[agents.<id>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentPrefs {
    /// Top-level keys merged over the agent's rendered settings file.
    pub settings: toml::Table,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// How long one `<agent> --version` probe may take before it is killed.
    pub probe_timeout_ms: u64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig { probe_timeout_ms: 5000 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TerminalConfig {
    pub scrollback_bytes: u64,
}

impl Default for TerminalConfig {
    fn default() -> Self {
        TerminalConfig { scrollback_bytes: 1 << 20 }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Variables copied from the caller's environment into agent runs.
    pub env_passthrough: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Paths under the real home that sandboxed sessions may read (not
    /// write), relative to it (`~/` allowed); a list replaces the default.
    pub home_ro: Vec<String>,
    /// Per profile alias: what of the desktop its sandboxed sessions may
    /// reach (`display`, `ssh-agent`, `dbus`, `gpg-agent`); nothing when
    /// absent. `[sandbox.allow] work = ["ssh-agent"]`.
    pub allow: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            home_ro: vec![".gitconfig".into(), ".config/git".into()],
            allow: Default::default(),
        }
    }
}

impl Config {
    /// Loads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(anyhow!("reading {}: {e}", path.display())),
        };
        let config: Config = from_toml(path, &text)?;
        config.validate().map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.daemon.idle_timeout_secs == 0 {
            return Err(anyhow!(
                "[daemon] idle_timeout_secs must be at least 1 (use `ringlet daemon --stay-alive` to never exit)"
            ));
        }
        if self.detect.probe_timeout_ms == 0 {
            return Err(anyhow!("[detect] probe_timeout_ms must be at least 1"));
        }
        // The sandbox would skip such an entry (it never opens the home as
        // a whole or anything outside it); say so instead of doing nothing.
        for entry in &self.sandbox.home_ro {
            let rel = Path::new(entry.strip_prefix("~/").unwrap_or(entry));
            let inside =
                rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
                    && rel.components().any(|c| matches!(c, Component::Normal(_)))
                    && entry != "~";
            if !inside {
                return Err(anyhow!(
                    "[sandbox] home_ro: `{entry}` is not a path inside your home; entries are \
                     relative to it, like `.gitconfig` or `~/.config/git`"
                ));
            }
        }
        let registry = &self.registry;
        if let Err(e) = crate::registry::index::check_channel(&registry.channel) {
            return Err(anyhow!("[registry] channel: {e}"));
        }
        if let Some(url) = &registry.url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(anyhow!(
                "[registry] url: `{url}` is not an http:// or https:// URL (for a directory or \
                 a bundle use `ringlet registry sync --from <dir|file.tar>`)"
            ));
        }
        if registry.timeout_secs == 0 {
            return Err(anyhow!("[registry] timeout_secs must be at least 1"));
        }
        let known = crate::terminal::sandbox::OPT_INS;
        for (alias, names) in &self.sandbox.allow {
            if let Some(bad) = names.iter().find(|n| !known.iter().any(|(k, _)| k == n)) {
                let all: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
                return Err(anyhow!(
                    "[sandbox.allow] {alias}: `{bad}` is not something a sandbox can open; \
                     choose from {}",
                    all.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// Reads a TOML file into `T`, with errors as `<file>:<line>:<col>:
/// <message>`. Shared by every loader of TOML (config, manifests, templates,
/// catalogs).
///
/// The toml parser checks the syntax and builds a table; `T` is then read
/// from that table as JSON, by serde_json's `Value` deserializer. Why not
/// `toml::from_str::<T>`: toml's own deserializer, instantiated for each of
/// the thirty-odd types read from TOML, was 270 KB of the binary; read
/// through the JSON value it is a fraction (and shares code with the types
/// read from JSON). What that costs: serde names no position for a wrong
/// type or an unknown key, so [`locate`] finds it in the text.
pub fn from_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| anyhow!("{}", toml_error(path, text, &e)))?;
    let json = serde_json::to_value(&table).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    T::deserialize(&json).map_err(|e| anyhow!("{}", locate(path, text, &e.to_string())))
}

/// `<file>:<line>:<col>: <message>` for a serde error on a TOML file, the
/// position found from what the message quotes: the key of ``unknown field
/// `x` `` (or variant), or the value of `invalid type: string "x"`. Without
/// either (`missing field`), `<file>: <message>`.
fn locate(path: &Path, text: &str, message: &str) -> String {
    let quoted = |open: &str, close: char| {
        let start = message.find(open)? + open.len();
        let len = message[start..].find(close)?;
        Some(&message[start..start + len])
    };
    let at = if let Some(key) = quoted("unknown field `", '`') {
        find_key(text, key)
    } else if let Some(value) = quoted("string \"", '"') {
        text.find(&format!("\"{value}\"")).or_else(|| text.find(&format!("'{value}'")))
    } else if let Some(variant) = quoted("unknown variant `", '`') {
        text.find(&format!("\"{variant}\"")).or_else(|| text.find(&format!("'{variant}'")))
    } else if let Some(number) =
        ["integer `", "floating point `"].iter().find_map(|o| quoted(o, '`'))
    {
        find_value(text, number)
    } else {
        None
    };
    match at {
        Some(offset) => {
            let (line, col) = line_col(text, offset);
            format!("{}:{line}:{col}: {message}", path.display())
        }
        None => format!("{}: {message}", path.display()),
    }
}

/// Where a line sets `key` (`key =`, `"key" =`), or a table header names it.
fn find_key(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let bare = trimmed.trim_start_matches('[').trim_start_matches('"');
        let after = bare.strip_prefix(key).map(|rest| rest.trim_start_matches('"').trim_start());
        if after.is_some_and(|rest| rest.starts_with('=') || rest.starts_with(']')) {
            return Some(offset + indent);
        }
        offset += line.len();
    }
    None
}

/// Where a line sets some key to exactly `value`.
fn find_value(text: &str, value: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(eq) = line.find('=')
            && line[eq + 1..].trim() == value
        {
            return Some(
                offset + eq + 1 + (line[eq + 1..].len() - line[eq + 1..].trim_start().len()),
            );
        }
        offset += line.len();
    }
    None
}

/// Formats a TOML error as one line: `<file>:<line>:<col>: <message> (at <text>)`.
/// Shared by the config and manifest loaders.
pub fn toml_error(path: &Path, text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', "; ");
    match err.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            let snippet = text.get(span.clone()).unwrap_or("").lines().next().unwrap_or("").trim();
            if snippet.is_empty() || snippet.len() > 60 {
                format!("{}:{line}:{col}: {message}", path.display())
            } else {
                format!("{}:{line}:{col}: {message} (at `{snippet}`)", path.display())
            }
        }
        None => format!("{}: {message}", path.display()),
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        let config: Config = from_toml(Path::new("config.toml"), text)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.daemon.idle_timeout_secs, 300);
        assert_eq!(c.daemon.http_port, 8765);
        assert_eq!(c.daemon.http_bind, "127.0.0.1");
        assert_eq!(c.terminal.scrollback_bytes, 1 << 20);
        assert_eq!(c.sandbox.home_ro, [".gitconfig", ".config/git"]);
    }

    #[test]
    fn values_are_read() {
        let c = parse(
            "[daemon]\nidle_timeout_secs = 5\n[defaults]\nprovider = \"zai\"\n\
             [run]\nenv_passthrough = [\"DISABLE_AUTOUPDATER\"]\n[custom]\nanything = { a = 1 }\n",
        )
        .unwrap();
        assert_eq!(c.daemon.idle_timeout_secs, 5);
        assert_eq!(c.defaults.provider.as_deref(), Some("zai"));
        assert_eq!(c.run.env_passthrough, ["DISABLE_AUTOUPDATER"]);
        assert!(c.custom.contains_key("anything"));
    }

    #[test]
    fn the_proxy_backend() {
        assert_eq!(parse("").unwrap().proxy.backend, ProxyBackend::Builtin);
        let c = parse("[proxy]\nbackend = \"litellm\"\nlitellm_command = \"/opt/l/litellm\"\n")
            .unwrap();
        assert_eq!(c.proxy.backend, ProxyBackend::Litellm);
        assert_eq!(c.proxy.litellm_command.as_deref(), Some("/opt/l/litellm"));
        let c = parse("[tls]\nca_file = \"/etc/corp.pem\"\n").unwrap();
        assert_eq!(c.tls.ca_file.as_deref(), Some(std::path::Path::new("/etc/corp.pem")));
        let err = parse("[proxy]\nbackend = \"ultrallm\"\n").unwrap_err().to_string();
        assert!(err.starts_with("config.toml:2:") && err.contains("builtin"), "{err}");
    }

    #[test]
    fn the_registry_section() {
        let c = parse("").unwrap();
        assert_eq!((c.registry.url, c.registry.channel.as_str()), (None, "stable"));
        assert_eq!((c.registry.allow_unsigned, c.registry.auto_sync), (false, AutoSync::Off));
        let c = parse(
            "[registry]\nurl = \"https://r.example/{ref}/{channel}\"\nchannel = \"beta\"\n\
             public_key = \"RWQ\"\nallow_unsigned = true\nauto_sync = \"daily\"\n",
        )
        .unwrap();
        assert_eq!(c.registry.url.as_deref(), Some("https://r.example/{ref}/{channel}"));
        assert_eq!((c.registry.channel.as_str(), c.registry.auto_sync), ("beta", AutoSync::Daily));
        assert!(c.registry.allow_unsigned && c.registry.public_key.is_some());
        for (bad, says) in [
            ("url = \"ftp://x\"", "[registry] url"),
            ("channel = \"../x\"", "[registry] channel"),
            ("auto_sync = \"hourly\"", "daily"),
            ("timeout_secs = 0", "timeout_secs"),
        ] {
            let err = parse(&format!("[registry]\n{bad}\n")).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = parse("[daemon]\nidle_timeout_sec = 5\n").unwrap_err().to_string();
        assert!(err.starts_with("config.toml:2:1:"), "{err}");
        assert!(err.contains("idle_timeout_sec"), "{err}");
    }

    #[test]
    fn wrong_type_names_line_and_value() {
        let err = parse("\n[daemon]\nidle_timeout_secs = \"soon\"\n").unwrap_err().to_string();
        assert!(err.starts_with("config.toml:3:"), "{err}");
        assert!(err.contains("\"soon\""), "{err}");
    }

    #[test]
    fn syntax_error_names_line() {
        let err = parse("[daemon\n").unwrap_err().to_string();
        assert!(err.starts_with("config.toml:1:"), "{err}");
    }

    #[test]
    fn price_overrides_are_read_and_a_bad_one_is_located() {
        let c = parse("[pricing.\"my-model\"]\ninput_cost_per_token = 3e-6\n").unwrap();
        assert_eq!(c.pricing["my-model"].input_cost_per_token, Some(3e-6));
        let err = parse("\n[pricing.m]\ninput_cost_per_token = \"x\"\n").unwrap_err().to_string();
        assert_eq!(err, "config.toml:3:24: invalid type: string \"x\", expected f64");
    }

    #[test]
    fn type_errors_are_located_by_what_they_quote() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        let unknown = err("[daemon]\nhttp_port = 1\n  typo = 2\n");
        assert!(unknown.starts_with("config.toml:3:3: unknown field `typo`"), "{unknown}");
        let number = err("[daemon]\nhttp_port = 99999999\n");
        assert!(
            number.starts_with("config.toml:2:13: invalid value: integer `99999999`"),
            "{number}"
        );
        let variant = err("[proxy]\nbackend = \"nginx\"\n");
        assert!(variant.starts_with("config.toml:2:11: unknown variant `nginx`"), "{variant}");
        let table = err("[nosuch]\nx = 1\n");
        assert!(table.starts_with("config.toml:1:1: unknown field `nosuch`"), "{table}");
    }

    #[test]
    fn free_form_tables_keep_toml_types_through_the_json_route() {
        let c = parse("[custom]\nwhen = 1979-05-27T07:32:00Z\nn = 3\nf = 1.5\nlist = [1, \"a\"]\n")
            .unwrap();
        assert!(c.custom["when"].is_datetime(), "{:?}", c.custom["when"]);
        assert_eq!(c.custom["n"].as_integer(), Some(3));
        assert_eq!(c.custom["f"].as_float(), Some(1.5));
        assert_eq!(c.custom["list"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn zero_idle_timeout_is_refused() {
        let err = parse("[daemon]\nidle_timeout_secs = 0\n").unwrap_err().to_string();
        assert!(err.contains("idle_timeout_secs"), "{err}");
    }

    #[test]
    fn home_ro_is_read_and_replaces_the_default() {
        let c = parse("[sandbox]\nhome_ro = [\".npmrc\", \"~/.config/git\", \"a/./b\"]\n").unwrap();
        assert_eq!(c.sandbox.home_ro, [".npmrc", "~/.config/git", "a/./b"]);
        assert!(parse("[sandbox]\nhome_ro = []\n").unwrap().sandbox.home_ro.is_empty());
    }

    #[test]
    fn sandbox_opt_ins_are_per_profile_and_checked() {
        let c = parse("[sandbox.allow]\nwork = [\"ssh-agent\", \"dbus\"]\n").unwrap();
        assert_eq!(c.sandbox.allow["work"], ["ssh-agent", "dbus"]);
        assert_eq!(c.sandbox.home_ro, [".gitconfig", ".config/git"], "the default stays");
        assert!(Config::default().sandbox.allow.is_empty());
        let err = parse("[sandbox.allow]\nwork = [\"camera\"]\n").unwrap_err().to_string();
        assert!(err.contains("[sandbox.allow] work: `camera`"), "{err}");
        assert!(err.contains("display, ssh-agent, dbus, gpg-agent"), "{err}");
    }

    #[test]
    fn home_ro_entries_outside_the_home_are_refused() {
        // Never silently ignored: the user meant something by each entry.
        for bad in ["/etc/passwd", "../other/.ssh", ".config/../../x", "", ".", "~/", "~"] {
            let text = format!("[sandbox]\nhome_ro = [\".gitconfig\", {bad:?}]\n");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains("[sandbox] home_ro"), "{bad:?}: {err}");
            assert!(err.contains(&format!("`{bad}`")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
