//! PRIVATE STUB of helper regstore's API (REGISTRY.md), on branch regsync
//! only, so the orchestration compiles and its tests run before regstore
//! lands. Never merged: dropped when `git merge regstore` brings the real
//! `index`, `store`, `bundle` and `changes`.
#![allow(dead_code)]

pub mod index {
    use anyhow::{Result, bail};
    use sha2::Digest;

    use crate::registry::Index;

    pub fn sha256_hex(bytes: &[u8]) -> String {
        sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn commit_of(bytes: &[u8]) -> String {
        sha256_hex(bytes)
    }

    pub fn parse(bytes: &[u8]) -> Result<Index> {
        let index: Index = serde_json::from_slice(bytes)
            .map_err(|e| anyhow::anyhow!("registry.json is malformed: {e}"))?;
        if index.format != crate::registry::FORMAT {
            bail!("registry.json has format {}, this ringlet reads {}", index.format, 1);
        }
        for a in &index.artifacts {
            let ok = a.path.starts_with(&format!("{}/", a.kind.dir()))
                && !a.path.contains("..")
                && a.path.matches('/').count() == 1
                && !a.path.ends_with('/');
            if !ok {
                bail!("registry.json: artifact path `{}` is not allowed", a.path);
            }
        }
        Ok(index)
    }

    pub trait Source {
        fn describe(&self) -> String;
        fn index(&mut self) -> Result<Vec<u8>>;
        fn signature(&mut self) -> Result<Option<Vec<u8>>>;
        fn artifact(&mut self, a: &crate::registry::Artifact) -> Result<Vec<u8>>;
    }
}

pub mod changes {
    use serde::Serialize;

    use crate::registry::Kind;

    #[derive(Debug, Clone, Serialize)]
    pub struct Change {
        pub kind: Kind,
        pub id: String,
        pub field: String,
        pub before: Option<String>,
        pub after: Option<String>,
    }

    pub fn between(_old: Option<&std::path::Path>, _new: &std::path::Path) -> Vec<Change> {
        Vec::new()
    }
}

pub mod bundle {
    use std::path::{Path, PathBuf};

    use anyhow::{Context, Result, bail};
    use serde::Serialize;

    use super::index::Source;
    use crate::paths::Paths;
    use crate::registry::Artifact;

    pub struct DirSource {
        dir: PathBuf,
    }

    impl DirSource {
        pub fn new(dir: &Path) -> Result<DirSource> {
            if !dir.join("registry.json").is_file() {
                bail!("{} has no registry.json", dir.display());
            }
            Ok(DirSource { dir: dir.into() })
        }
    }

    impl Source for DirSource {
        fn describe(&self) -> String {
            self.dir.display().to_string()
        }
        fn index(&mut self) -> Result<Vec<u8>> {
            std::fs::read(self.dir.join("registry.json")).context("reading registry.json")
        }
        fn signature(&mut self) -> Result<Option<Vec<u8>>> {
            Ok(std::fs::read(self.dir.join("registry.json.minisig")).ok())
        }
        fn artifact(&mut self, a: &Artifact) -> Result<Vec<u8>> {
            std::fs::read(self.dir.join(&a.path)).with_context(|| format!("reading {}", a.path))
        }
    }

    pub struct TarSource;

    impl TarSource {
        pub fn open(file: &Path) -> Result<TarSource> {
            bail!("stub: no tar import ({})", file.display())
        }
    }

    impl Source for TarSource {
        fn describe(&self) -> String {
            String::new()
        }
        fn index(&mut self) -> Result<Vec<u8>> {
            bail!("stub")
        }
        fn signature(&mut self) -> Result<Option<Vec<u8>>> {
            bail!("stub")
        }
        fn artifact(&mut self, _a: &Artifact) -> Result<Vec<u8>> {
            bail!("stub")
        }
    }

    #[derive(Debug, Serialize)]
    pub struct ExportReport {
        pub commit: String,
        pub artifacts: usize,
        pub bytes: u64,
    }

    pub fn export(_paths: &Paths, _out: &Path) -> Result<ExportReport> {
        bail!("stub: no export")
    }
}

pub mod store {
    use std::io::Write;
    use std::path::Path;

    use anyhow::{Context, Result, anyhow, bail};
    use serde::{Deserialize, Serialize};

    use super::changes::Change;
    use super::index::{self, Source};
    use crate::paths::Paths;
    use crate::registry::{current_commit, current_dir, root};

    #[derive(Debug, Clone, Default)]
    pub struct SyncOptions {
        pub force: bool,
        pub expect_commit: Option<String>,
        pub public_key: Option<String>,
        pub allow_unsigned: bool,
    }

    #[derive(Debug, Clone, Default, Serialize)]
    pub struct Progress {
        pub artifacts_done: usize,
        pub artifacts_total: usize,
        pub bytes_done: u64,
        pub bytes_total: u64,
    }

    #[derive(Debug, Clone, Default, Serialize)]
    pub struct Outcome {
        pub commit: String,
        pub previous: Option<String>,
        pub unchanged: bool,
        pub fetched: usize,
        pub reused: usize,
        pub bytes: u64,
        pub changes: Vec<Change>,
        pub warnings: Vec<String>,
    }

    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub struct State {
        pub pin: Option<String>,
        pub channel: Option<String>,
        pub last_sync: Option<u64>,
        pub last_error: Option<String>,
        pub history: Vec<String>,
    }

    pub fn load_state(paths: &Paths) -> State {
        std::fs::read(root(paths).join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save_state(paths: &Paths, s: &State) -> Result<()> {
        crate::fsutil::write_atomic(
            &root(paths).join("state.json"),
            &serde_json::to_vec_pretty(s)?,
            0o600,
        )
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn swap_current(paths: &Paths, commit: &str) -> Result<()> {
        let tmp = root(paths).join(format!(".current-{}", crate::fsutil::random_hex(4)?));
        std::os::unix::fs::symlink(format!("commits/{commit}"), &tmp)?;
        std::fs::rename(&tmp, root(paths).join("current"))?;
        Ok(())
    }

    pub fn sync(
        paths: &Paths,
        source: &mut dyn Source,
        opts: &SyncOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Outcome> {
        crate::fsutil::create_private_dir(&root(paths).join("commits"))?;
        let lock_file = crate::fsutil::open_private(
            &root(paths).join("registry.lock"),
            crate::fsutil::Access::ReadWrite,
            0o600,
        )?;
        let mut lock = fd_lock::RwLock::new(lock_file);
        let _guard = lock.try_write().map_err(|_| anyhow!("a registry sync is already running"))?;
        let bytes = source.index()?;
        let idx = index::parse(&bytes)?;
        let commit = index::commit_of(&bytes);
        if opts.public_key.is_some() {
            bail!("stub: cannot verify signatures");
        }
        if let Some(want) = &opts.expect_commit
            && *want != commit
        {
            bail!("{} serves commit {commit}, not the pinned {want}", source.describe());
        }
        let previous = current_commit(paths);
        if previous.as_deref() == Some(commit.as_str()) && !opts.force {
            return Ok(Outcome { commit, previous, unchanged: true, ..Default::default() });
        }
        let staging =
            root(paths).join("commits").join(format!(".staging-{}", crate::fsutil::random_hex(8)?));
        let cur = current_dir(paths);
        let mut p = Progress {
            artifacts_total: idx.artifacts.len(),
            bytes_total: idx.artifacts.iter().map(|a| a.size).sum(),
            ..Default::default()
        };
        let (mut fetched, mut reused, mut got) = (0, 0, 0);
        let result = (|| -> Result<()> {
            for a in &idx.artifacts {
                let old = cur.as_ref().and_then(|c| std::fs::read(c.join(&a.path)).ok());
                let data = match old {
                    Some(o) if !opts.force && index::sha256_hex(&o) == a.sha256 => {
                        reused += 1;
                        o
                    }
                    _ => {
                        let d = source.artifact(a)?;
                        if d.len() as u64 != a.size {
                            bail!("{}: {} bytes, registry.json says {}", a.path, d.len(), a.size);
                        }
                        if index::sha256_hex(&d) != a.sha256 {
                            bail!("{}: checksum mismatch", a.path);
                        }
                        fetched += 1;
                        got += d.len() as u64;
                        d
                    }
                };
                let file = staging.join(&a.path);
                std::fs::create_dir_all(file.parent().unwrap())?;
                std::fs::File::create(&file)?.write_all(&data)?;
                p.artifacts_done += 1;
                p.bytes_done += a.size;
                progress(&p);
            }
            std::fs::write(staging.join("registry.json"), &bytes)?;
            crate::fsutil::crash_point("registry-staged");
            let dest = root(paths).join("commits").join(&commit);
            if dest.exists() {
                std::fs::remove_dir_all(&staging)?;
            } else {
                std::fs::rename(&staging, &dest)?;
            }
            swap_current(paths, &commit)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        let mut state = load_state(paths);
        state.history.retain(|c| *c != commit);
        state.history.insert(0, commit.clone());
        state.history.truncate(3);
        state.last_sync = Some(now());
        state.last_error = None;
        state.channel = Some(idx.channel.clone());
        save_state(paths, &state).context("saving state.json")?;
        Ok(Outcome {
            commit,
            previous,
            unchanged: false,
            fetched,
            reused,
            bytes: got,
            changes: Vec::new(),
            warnings: Vec::new(),
        })
    }

    pub fn rollback(paths: &Paths) -> Result<Outcome> {
        let mut state = load_state(paths);
        let current = current_commit(paths).context("nothing synced yet")?;
        let Some(prev) = state.history.iter().find(|c| **c != current).cloned() else {
            bail!("no earlier commit is kept to roll back to");
        };
        swap_current(paths, &prev)?;
        state.history.retain(|c| *c != prev);
        state.history.insert(0, prev.clone());
        save_state(paths, &state)?;
        let _ = Path::new("");
        Ok(Outcome { commit: prev, previous: Some(current), ..Default::default() })
    }
}
