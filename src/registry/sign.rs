//! Registry signatures: `registry.json.minisig`, made with the real
//! `minisign` tool (`minisign -S -m registry.json`), checked against the
//! `[registry] public_key` with the `minisign-verify` crate (design.md §2).
//! Signing `registry.json` signs the whole registry: it holds every
//! artifact's SHA-256, and the store checks each artifact against it.

use anyhow::{Result, anyhow, bail};
use minisign_verify::{Error, PublicKey, Signature};

/// Checks that `sig` is a valid minisign signature of `index` by
/// `public_key`: the base64 key line, or the whole `minisign.pub` file
/// (comment line and key line). A missing signature is an error here: the
/// caller only asks when a key is configured.
pub fn verify(index: &[u8], sig: Option<&[u8]>, public_key: &str) -> Result<()> {
    let key = parse_key(public_key)?;
    let Some(sig) = sig else {
        bail!(
            "registry.json is not signed (no registry.json.minisig), but [registry] public_key is set"
        );
    };
    let text = std::str::from_utf8(sig)
        .map_err(|_| anyhow!("registry.json.minisig is not a minisign signature"))?;
    let sig = Signature::decode(text)
        .map_err(|e| anyhow!("registry.json.minisig is not a minisign signature ({e})"))?;
    // No legacy (non-prehashed) signatures: minisign has made prehashed ones
    // by default since 0.8, and refusing the old mode leaves one code path.
    key.verify(index, &sig, false).map_err(|e| match e {
        Error::UnexpectedKeyId => anyhow!(
            "registry.json is signed with another key than [registry] public_key (the key ids differ)"
        ),
        Error::InvalidSignature => {
            anyhow!("bad signature: registry.json does not match registry.json.minisig")
        }
        e => anyhow!("registry.json.minisig cannot be checked ({e})"),
    })
}

/// The `timestamp:` minisign writes into a signature's trusted comment
/// (which the signature covers), in Unix seconds; `None` when the signature
/// does not decode or its comment has none. Meaningful only for a
/// signature [`verify`] accepted.
pub fn signed_time(sig: &[u8]) -> Option<u64> {
    let sig = Signature::decode(std::str::from_utf8(sig).ok()?).ok()?;
    let comment = sig.trusted_comment();
    let at = comment.find("timestamp:")? + "timestamp:".len();
    let digits: String = comment[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A minisign public key: `RW...` alone, or `minisign.pub`'s two lines.
fn parse_key(text: &str) -> Result<PublicKey> {
    let text = text.trim();
    let parsed = if text.starts_with("untrusted comment:") {
        PublicKey::decode(text)
    } else {
        PublicKey::from_base64(text)
    };
    parsed.map_err(|e| anyhow!("[registry] public_key is not a minisign public key ({e})"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;
    use std::process::{Command, Stdio};

    /// A minisign key pair made by the real tool, without a password:
    /// returns the public key file's contents.
    pub(crate) fn keygen(dir: &Path) -> String {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("minisign")
            .args(["-G", "-W", "-f", "-p"])
            .arg(dir.join("minisign.pub"))
            .arg("-s")
            .arg(dir.join("minisign.key"))
            .stdout(Stdio::null())
            .status()
            .expect("minisign (Debian package; tests/setup.sh installs it)");
        assert!(status.success());
        std::fs::read_to_string(dir.join("minisign.pub")).unwrap()
    }

    /// Signs `file` with the key made by [`keygen`] in `keys`: writes
    /// `<file>.minisig`.
    pub(crate) fn sign(keys: &Path, file: &Path) {
        let status = Command::new("minisign")
            .arg("-S")
            .arg("-s")
            .arg(keys.join("minisign.key"))
            .arg("-m")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn real_minisign_signatures_good_bad_missing_wrong_key() {
        let dir = crate::registry::bundle::tests::scratch("sign");
        let public = keygen(&dir.join("k1"));
        let other = keygen(&dir.join("k2"));
        let file = dir.join("registry.json");
        std::fs::write(&file, b"{\"format\":1}").unwrap();
        sign(&dir.join("k1"), &file);
        let sig = std::fs::read(dir.join("registry.json.minisig")).unwrap();
        let index = std::fs::read(&file).unwrap();
        // Good, with the whole .pub file and with the key line alone.
        verify(&index, Some(&sig), &public).unwrap();
        let line = public.lines().nth(1).unwrap();
        verify(&index, Some(&sig), line).unwrap();
        // Bad: one byte of registry.json changed.
        let err = verify(b"{\"format\":2}", Some(&sig), line).unwrap_err();
        assert!(err.to_string().contains("bad signature"), "{err}");
        // Missing.
        let err = verify(&index, None, line).unwrap_err();
        assert!(err.to_string().contains("not signed"), "{err}");
        // Wrong key.
        let err = verify(&index, Some(&sig), &other).unwrap_err();
        assert!(err.to_string().contains("another key"), "{err}");
        // Garbage in either place.
        assert!(
            verify(&index, Some(b"junk"), line).unwrap_err().to_string().contains("not a minisign")
        );
        assert!(
            verify(&index, Some(&sig), "RWjunk").unwrap_err().to_string().contains("public_key")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
