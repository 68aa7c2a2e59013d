//! Registries over HTTP(S): [`HttpSource`], a [`Source`] that fetches
//! `registry.json`, its signature and the artifacts from a registry's root
//! URL with the one client of [`crate::net`] (its download settings: a total
//! time limit per request, a few redirects followed, never HTTPS down to
//! HTTP, `[tls] ca_file` trusted).
//!
//! The root URL comes from `[registry] url`, a template: `{channel}` becomes
//! the channel and `{ref}` the pin, or the channel when nothing is pinned
//! ([`expand`]). Every body is capped before it is read whole: an artifact at
//! the size `registry.json` gives it (one byte more is read, to tell "too
//! big" from "just right"), `registry.json` at [`INDEX_CAP`]. A body that
//! ends early is an error that says so; hashes are the store's to check.
//! `registry.json.minisig` is asked for only when `[registry] public_key` is
//! set: without a key it would go unchecked, and an unchanged registry costs
//! one request.
//!
//! A build without the `net` feature has no TLS; rather than quietly speaking
//! plain HTTP only, it says that URL sync is not built in ([`HttpSource::new`]),
//! and `registry sync --from <dir|file.tar>` carries on working.

use anyhow::{Result, bail};

use crate::registry::Artifact;
use crate::registry::index::{ARTIFACT_CAP, INDEX_CAP, SIGNATURE_CAP, SIGNATURE_FILE, Source};

/// Redirects followed per request; one more is an error.
pub const MAX_REDIRECTS: u32 = 5;
/// How long connecting may take (within the total).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Checks a pin: it is pasted into a URL, so only the characters of tags,
/// branches and hashes, no `..` segment, nothing that starts an option.
pub fn check_ref(reference: &str) -> Result<()> {
    let plain = reference
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    let bad_segment = reference.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if reference.is_empty()
        || reference.len() > 128
        || !plain
        || bad_segment
        || reference.starts_with('-')
    {
        bail!(
            "`{reference}` is not a ref: give a tag, a branch or a commit hash (letters, digits, \
             `-`, `_`, `.`, `/`; no `..`)"
        );
    }
    Ok(())
}

/// The root URL of a registry: `template` with `{channel}` and `{ref}`
/// filled in, without a trailing `/` or `/registry.json`.
pub fn expand(template: &str, channel: &str, reference: Option<&str>) -> Result<String> {
    let url = template.replace("{channel}", channel).replace("{ref}", reference.unwrap_or(channel));
    if let Some(open) = url.find('{') {
        let rest = &url[open..];
        let name = &rest[..rest.find('}').map_or(rest.len(), |i| i + 1)];
        bail!(
            "registry URL `{template}`: unknown placeholder `{name}` (only {{channel}} and {{ref}})"
        );
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        bail!("registry URL `{url}` is not an http:// or https:// URL");
    }
    if url.contains(['?', '#']) {
        bail!("registry URL `{url}`: a query or fragment cannot hold a registry; give its root");
    }
    let url = url.strip_suffix("/registry.json").unwrap_or(&url);
    Ok(url.trim_end_matches('/').to_string())
}

/// The download client kept between syncs: making one (the TLS roots, the
/// crypto provider) costs milliseconds, and a kept one keeps its idle
/// connection to the registry, so an unchanged sync is one request on an
/// open connection. A new one is made when the settings change (the CA
/// file's path, size and time included).
#[derive(Default)]
pub struct Clients {
    #[cfg(feature = "net")]
    slot: std::sync::Mutex<Option<(ClientKey, ureq::Agent)>>,
}

/// The CA file (path, size, time), the total timeout, HTTPS only: what a
/// kept client was made for.
#[cfg(feature = "net")]
type ClientKey =
    (Option<(std::path::PathBuf, u64, Option<std::time::SystemTime>)>, std::time::Duration, bool);

#[cfg(feature = "net")]
impl Clients {
    fn get(
        &self,
        ca_file: Option<&std::path::Path>,
        timeout: std::time::Duration,
        https_only: bool,
    ) -> Result<ureq::Agent> {
        let ca = ca_file.map(|f| {
            let meta = std::fs::metadata(f).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            (f.to_path_buf(), len, meta.and_then(|m| m.modified().ok()))
        });
        let key: ClientKey = (ca, timeout, https_only);
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((kept, agent)) = slot.as_ref()
            && *kept == key
        {
            return Ok(agent.clone());
        }
        let limits = crate::net::Download {
            connect: CONNECT_TIMEOUT.min(timeout),
            total: timeout,
            max_redirects: MAX_REDIRECTS,
            https_only,
        };
        let agent = crate::net::download_agent(ca_file, &limits)?;
        *slot = Some((key, agent.clone()));
        Ok(agent)
    }
}

/// A registry served over HTTP(S); see the module docs.
pub struct HttpSource {
    #[cfg(feature = "net")]
    agent: ureq::Agent,
    /// The root URL, no trailing `/`.
    root: String,
    /// The channel asked for: `registry.json` must say the same.
    channel: String,
    /// Whether a signature is wanted (a public key is set).
    signed: bool,
    /// Requests sent so far (each redirect hop not counted).
    pub requests: usize,
}

impl HttpSource {
    /// A source for the registry at `root` (see [`expand`]), each request
    /// limited to `timeout` in all; `signed`: fetch the signature too. The
    /// client comes from `clients` (made there when its settings are new).
    #[cfg(feature = "net")]
    pub fn new(
        root: &str,
        channel: &str,
        signed: bool,
        ca_file: Option<&std::path::Path>,
        timeout: std::time::Duration,
        clients: &Clients,
    ) -> Result<HttpSource> {
        let agent = clients.get(ca_file, timeout, root.starts_with("https://"))?;
        Ok(HttpSource { agent, root: root.into(), channel: channel.into(), signed, requests: 0 })
    }

    /// Without the `net` feature: no URL sync (see the module docs).
    #[cfg(not(feature = "net"))]
    pub fn new(
        root: &str,
        _channel: &str,
        _signed: bool,
        _ca_file: Option<&std::path::Path>,
        _timeout: std::time::Duration,
        _clients: &Clients,
    ) -> Result<HttpSource> {
        bail!(
            "cannot fetch {root}: URL sync is not built in (this ringlet was built without the \
             `net` feature); import a bundle or a directory with \
             `ringlet registry sync --from <dir|file.tar>`"
        )
    }

    fn url(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root)
    }

    /// GETs `rel` and reads at most `cap` + 1 bytes of it; `None` for a 404.
    #[cfg(feature = "net")]
    fn get(&mut self, rel: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        let url = self.url(rel);
        self.requests += 1;
        let mut response = self.agent.get(&url).call().map_err(|e| http_error(&url, e))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            bail!("GET {url}: the server answered HTTP {status}");
        }
        if let Some(len) = response.body().content_length()
            && len > cap
        {
            bail!("GET {url}: the server announces {len} bytes, more than the {cap} expected");
        }
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(cap + 1)
            .read_to_end(&mut body)
            .map_err(|e| body_error(&url, e))?;
        if body.len() as u64 > cap {
            bail!("GET {url}: the body is larger than the {cap} bytes expected");
        }
        Ok(Some(body))
    }

    #[cfg(not(feature = "net"))]
    fn get(&mut self, rel: &str, _cap: u64) -> Result<Option<Vec<u8>>> {
        bail!("cannot fetch {}: URL sync is not built in", self.url(rel))
    }
}

/// One line for a failed request: what timed out, looped or refused.
#[cfg(feature = "net")]
fn http_error(url: &str, e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Timeout(what) => {
            anyhow::anyhow!("GET {url}: timed out ({what}); see [registry] timeout_secs")
        }
        ureq::Error::TooManyRedirects => {
            anyhow::anyhow!("GET {url}: more than {MAX_REDIRECTS} redirects (a redirect loop?)")
        }
        other => anyhow::anyhow!("GET {url}: {other}"),
    }
}

/// A body read that failed: a timeout said as one, else where it broke off.
#[cfg(feature = "net")]
fn body_error(url: &str, e: std::io::Error) -> anyhow::Error {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>());
    if let Some(ureq::Error::Timeout(what)) = inner {
        return anyhow::anyhow!(
            "GET {url}: timed out ({what}) while reading the body; see [registry] timeout_secs"
        );
    }
    anyhow::anyhow!("GET {url}: the download broke off before its end (truncated): {e}")
}

impl Source for HttpSource {
    fn describe(&self) -> String {
        self.root.clone()
    }

    fn index(&mut self) -> Result<Vec<u8>> {
        let Some(bytes) = self.get("registry.json", INDEX_CAP)? else {
            bail!(
                "GET {}: HTTP 404: no registry there (check [registry] url and the channel `{}`)",
                self.url("registry.json"),
                self.channel
            );
        };
        // The store parses it again; here only to refuse another channel's
        // index before anything is fetched for it.
        if let Ok(index) = crate::registry::index::parse(&bytes)
            && index.channel != self.channel
        {
            bail!(
                "{} is channel `{}`, not the `{}` asked for",
                self.url("registry.json"),
                index.channel,
                self.channel
            );
        }
        Ok(bytes)
    }

    fn signature(&mut self) -> Result<Option<Vec<u8>>> {
        if !self.signed {
            return Ok(None);
        }
        self.get(SIGNATURE_FILE, SIGNATURE_CAP)
    }

    fn artifact(&mut self, a: &Artifact) -> Result<Vec<u8>> {
        if a.size > ARTIFACT_CAP {
            bail!("{}: {} bytes is more than the {ARTIFACT_CAP} accepted", a.path, a.size);
        }
        let Some(bytes) = self.get(&a.path, a.size)? else {
            bail!(
                "GET {}: HTTP 404 (registry.json lists it; the server does not have it)",
                self.url(&a.path)
            );
        };
        if (bytes.len() as u64) < a.size {
            bail!(
                "GET {}: truncated: {} of the {} bytes registry.json gives",
                self.url(&a.path),
                bytes.len(),
                a.size
            );
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand() {
        let t = "https://r.example/{ref}/{channel}/";
        assert_eq!(expand(t, "stable", None).unwrap(), "https://r.example/stable/stable");
        assert_eq!(expand(t, "beta", Some("v2")).unwrap(), "https://r.example/v2/beta");
        let t = "http://127.0.0.1:1/reg/registry.json";
        assert_eq!(expand(t, "stable", None).unwrap(), "http://127.0.0.1:1/reg");
        let err = expand("https://x/{branch}", "stable", None).unwrap_err().to_string();
        assert!(err.contains("`{branch}`"), "{err}");
        assert!(expand("file:///etc", "stable", None).is_err());
        assert!(expand("https://x/?a={ref}", "stable", None).is_err());
    }

    #[cfg(not(feature = "net"))]
    #[test]
    fn without_net_a_url_sync_says_it_is_not_built_in() {
        let clients = Clients::default();
        let root = "https://r.example/stable";
        let err = HttpSource::new(root, "stable", false, None, Default::default(), &clients);
        let err = format!("{:#}", err.err().unwrap());
        assert!(err.contains("URL sync is not built in") && err.contains("--from"), "{err}");
    }

    #[test]
    fn refs() {
        for good in ["v1", "main", "release/2026.1", &"a".repeat(64)] {
            check_ref(good).unwrap();
        }
        for bad in ["", "..", "a/../b", "-x", "a b", "a?b", "a%2f", "/abs", "a//b", "x\n"] {
            assert!(check_ref(bad).is_err(), "{bad:?}");
        }
    }
}
