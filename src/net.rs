//! The one outbound HTTP client: the proxy's upstreams (and, later, the
//! registry sync). ureq 3, blocking, no async runtime; with the default-on
//! `net` feature, TLS through rustls checked against the system's trust
//! store (the platform verifier), or against a CA bundle of the user's
//! (`SSL_CERT_FILE`, `[tls] ca_file`) for a corporate TLS proxy or a test CA.
//! Without `net` the same client speaks plain HTTP only.
//!
//! Set for relaying, not for browsing: HTTP statuses come back as answers,
//! never as errors (a 429 is the proxy's to judge); redirects are never
//! followed (a redirected POST would resend a prompt, and keys, elsewhere);
//! no header is added that the caller did not ask for (no User-Agent,
//! Accept or Accept-Encoding of ureq's own: the agent's pass through as
//! they were); `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY` are
//! honoured. Connecting may take 10 s; a stream may run for as long as it
//! runs, but a read that waits more than a few minutes for a byte ends it.
//! Connections are pooled per host, which saves the TCP and TLS handshakes
//! on every request after the first.
//!
//! The registry sync downloads instead ([`download_agent`]): plain GETs with
//! a total time limit per request, a bounded number of redirects followed
//! (never from HTTPS down to HTTP), and an honest User-Agent; the caller caps
//! every body's size.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
#[cfg(feature = "net")]
use anyhow::{Context, bail};
use ureq::config::AutoHeaderValue;

/// How long the client waits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Name resolution plus the TCP connect (and a proxy's CONNECT).
    pub connect: Duration,
    /// Longest wait for any one read, headers or body; no total limit, so a
    /// long stream is never cut while it flows.
    pub idle_read: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        // Five minutes: a thinking model can be silent for a while before its
        // first event, and Claude Code's own request timeout is ten.
        Timeouts { connect: Duration::from_secs(10), idle_read: Duration::from_secs(300) }
    }
}

/// Where the system keeps its CA bundle as one PEM file, by distribution.
#[cfg(feature = "net")]
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The client. `ca_file` (else `SSL_CERT_FILE`) names a PEM bundle whose
/// certificates are trusted beside the system's bundle file; without one the
/// platform verifier decides.
pub fn agent(ca_file: Option<&Path>, timeouts: Timeouts) -> Result<ureq::Agent> {
    Ok(builder(ca_file, timeouts)?.build().new_agent())
}

/// Limits of a download ([`download_agent`]). Without the `net` feature
/// there is no TLS, and the registry sync fetches no URL at all.
#[cfg(feature = "net")]
#[derive(Debug, Clone, Copy)]
pub struct Download {
    /// Name resolution plus the TCP connect.
    pub connect: Duration,
    /// The whole request, redirects and body included.
    pub total: Duration,
    /// Redirects followed; one more is an error ("too many redirects").
    pub max_redirects: u32,
    /// Refuse any plain-HTTP hop (set when the first URL is HTTPS, so a
    /// redirect can never downgrade it).
    pub https_only: bool,
}

/// A client for fetching files (the registry): GET redirects are followed
/// up to `limits.max_redirects`, and a request ends after `limits.total`
/// however the server paces it. Statuses still come back as answers.
#[cfg(feature = "net")]
pub fn download_agent(ca_file: Option<&Path>, limits: &Download) -> Result<ureq::Agent> {
    let timeouts = Timeouts { connect: limits.connect, idle_read: limits.total };
    let builder = builder(ca_file, timeouts)?
        .max_redirects(limits.max_redirects)
        .max_redirects_will_error(true)
        .https_only(limits.https_only)
        .timeout_global(Some(limits.total))
        .user_agent(concat!("ringlet/", env!("CARGO_PKG_VERSION")))
        .max_idle_connections(4)
        .max_idle_connections_per_host(2);
    Ok(builder.build().new_agent())
}

/// The settings both clients share.
fn builder(
    ca_file: Option<&Path>,
    timeouts: Timeouts,
) -> Result<ureq::config::ConfigBuilder<ureq::typestate::AgentScope>> {
    let builder = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent(AutoHeaderValue::None)
        .accept(AutoHeaderValue::None)
        .accept_encoding(AutoHeaderValue::None)
        .no_delay(true)
        .timeout_connect(Some(timeouts.connect))
        .timeout_per_read(Some(timeouts.idle_read))
        .timeout_per_write(Some(timeouts.idle_read))
        // ureq's 128 KiB buffers, twice per connection, would be 25 MB for
        // a hundred concurrent streams; response heads fit well in 32 KiB.
        .input_buffer_size(32 * 1024)
        .output_buffer_size(16 * 1024)
        .max_response_header_size(32 * 1024)
        .max_idle_connections(64)
        .max_idle_connections_per_host(16);
    #[cfg(feature = "net")]
    let builder = builder.tls_config(tls(ca_file)?);
    #[cfg(not(feature = "net"))]
    let _ = ca_file;
    Ok(builder)
}

#[cfg(feature = "net")]
fn tls(ca_file: Option<&Path>) -> Result<ureq::tls::TlsConfig> {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let env = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    let extra = ca_file.map(Path::to_path_buf).or(env.map(std::path::PathBuf::from));
    let roots = match extra {
        None => RootCerts::PlatformVerifier,
        Some(file) => {
            let mut certs = read_bundle(&file)?;
            if certs.is_empty() {
                bail!("{} holds no PEM certificate", file.display());
            }
            // The user's bundle adds to the system's, as a corporate CA
            // must not make every public site untrusted.
            if let Some(system) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file())
                && system != file
            {
                certs.extend(read_bundle(system).unwrap_or_default());
            }
            RootCerts::from(certs)
        }
    };
    // ring, handed over explicitly: ureq is built without a provider of
    // its own (Cargo.toml, feature `net`). rustls deprecates ring's provider
    // for lacking post-quantum key exchange; aws-lc-rs has it but would add
    // a C library and over a megabyte to a 6.5 MB budget.
    #[allow(deprecated)]
    let crypto = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(crypto)
        .build())
}

/// Every certificate in a PEM file (keys and other items are skipped).
#[cfg(feature = "net")]
fn read_bundle(file: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    use ureq::tls::PemItem;
    let pem = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(cert) =
            item.with_context(|| format!("parsing {}", file.display()))?
        {
            certs.push(cert);
        }
    }
    Ok(certs)
}

#[cfg(all(test, feature = "net"))]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_an_error() {
        let dir = std::env::temp_dir().join(format!("ringlet-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let err = agent(Some(&file), Timeouts::default()).unwrap_err();
        assert!(format!("{err:#}").contains("holds no PEM certificate"), "{err:#}");
        let missing = agent(Some(&dir.join("missing.pem")), Timeouts::default()).unwrap_err();
        assert!(format!("{missing:#}").contains("missing.pem"), "{missing:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
