//! The proxy's secrets: each proxy-enabled profile's local token (what its
//! agent presents instead of an upstream key; `proxy.<alias>`) and the
//! provider keys a rule's target may need (`provider.<id>`, set with
//! `ringlet providers key set`). Both live in the secret store like profile
//! keys (keychain, else 0600 files), in namespaces of their own
//! (`secrets::provider_name`, `secrets::proxy_name`). Neither records where
//! it went: [`Secrets::find`] looks in the file store, then the keychain.

use std::sync::Mutex;

use anyhow::Result;

use crate::secrets::{Secrets, StoreKind, Stored, provider_name, proxy_name};

/// Serializes the find-or-create of local tokens: two requests rendering
/// the same profile at once must not mint two tokens.
static TOKENS: Mutex<()> = Mutex::new(());

/// The profile's local token: created once (32 random bytes, hex) and kept
/// in the secret store, so it is stable across daemon and proxy restarts.
pub fn local_token(secrets: &Secrets, alias: &str) -> Result<String> {
    let _guard = TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    let name = proxy_name(alias);
    if let Some((_, token)) = secrets.find(&name)? {
        return Ok(token);
    }
    let token = crate::fsutil::random_hex(32)?;
    secrets.set(&name, &token)?;
    crate::info!("profile {alias}: created its proxy token");
    Ok(token)
}

/// Removes the profile's local token from every store; absent is fine.
pub fn remove_local_token(secrets: &Secrets, alias: &str) -> Result<()> {
    let _guard = TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    secrets.remove(&proxy_name(alias))
}

/// Where the key of `provider` is stored, if it is.
pub fn provider_key_store(secrets: &Secrets, provider: &str) -> Result<Option<StoreKind>> {
    Ok(secrets.find(&provider_name(provider))?.map(|(kind, _)| kind))
}

/// Stores `key` as the key of `provider`, replacing any earlier one (in
/// whichever store held it: a copy left in the other store would shadow or
/// outlive the new key).
pub fn set_provider_key(secrets: &Secrets, provider: &str, key: &str) -> Result<Stored> {
    let name = provider_name(provider);
    let stored = secrets.set(&name, key)?;
    // A keychain write already removed a stale file; a file write (pinned or
    // fallback) leaves any keychain copy, which `find` never prefers but a
    // later `remove` must not miss: delete it now when we can.
    if stored.kind == StoreKind::File
        && let Err(e) = secrets.delete_keychain_copy(&name)
    {
        crate::warn!("provider {provider}: could not remove the old keychain copy: {e:#}");
    }
    Ok(stored)
}

/// Removes the key of `provider`; returns whether there was one.
pub fn remove_provider_key(secrets: &Secrets, provider: &str) -> Result<bool> {
    let name = provider_name(provider);
    let existed = secrets.find(&name)?.is_some();
    secrets.remove(&name)?;
    Ok(existed)
}

/// Checks a key typed for a provider the way a profile's key is checked.
pub fn check_key(key: &str) -> Result<String> {
    crate::profiles::create::check_key(key)
}

/// A key travelling in a request (`providers key set`): serialized as the
/// plain string, shown as `<redacted>` by `Debug` (the daemon logs requests
/// at debug level).
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyText(pub String);

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::profiles::render::REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_never_debugs_the_key() {
        let k = KeyText("sk-secret-value".into());
        assert_eq!(format!("{k:?}"), "<redacted>");
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"sk-secret-value\"");
    }
}
