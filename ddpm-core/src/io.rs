//! Writing files so that a reader never sees half of one: write beside the target, flush to
//! disk, rename over it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;

use crate::error::{DdpmError, Result};

/// A temporary path in the same directory as `path` (so the final rename stays on one disk).
pub fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Flush `tmp` to disk and move it over `path`.
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| DdpmError::io(tmp, e))?;
    std::fs::rename(tmp, path).map_err(|e| DdpmError::io(path, e))
}

/// Write `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path_for(path);
    let result = File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| DdpmError::io(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| DdpmError::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// An output directory whose new files are written into a hidden staging folder inside it and
/// moved into place only when every one of them is written ([`StagedDir::commit`]).
///
/// Creating it checks that the directory is writable, so a bad `--out-dir` fails before any
/// training. A run that fails later (a diverged loss, non-finite samples, a full disk) drops it
/// uncommitted: the staging folder is removed, the files from an earlier run are left as they
/// were, and a directory that this run created is removed again if it is still empty.
#[derive(Debug)]
pub struct StagedDir {
    dir: PathBuf,
    staging: PathBuf,
    created: bool,
    committed: bool,
}

impl StagedDir {
    /// Create `dir` if needed and a staging folder inside it.
    pub fn create(dir: &Path) -> Result<Self> {
        let created = !dir.exists();
        let unwritable = |e: std::io::Error| DdpmError::OutputDir {
            path: dir.to_path_buf(),
            cause: e,
        };
        std::fs::create_dir_all(dir).map_err(unwritable)?;
        let staging = dir.join(format!(".staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging).map_err(unwritable)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            staging,
            created,
            committed: false,
        })
    }

    /// Where to write the new files (the staging folder).
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Move every staged file into the directory, replacing files of the same name.
    pub fn commit(mut self) -> Result<()> {
        let entries =
            std::fs::read_dir(&self.staging).map_err(|e| DdpmError::io(&self.staging, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DdpmError::io(&self.staging, e))?;
            let target = self.dir.join(entry.file_name());
            std::fs::rename(entry.path(), &target).map_err(|e| DdpmError::io(&target, e))?;
        }
        std::fs::remove_dir(&self.staging).map_err(|e| DdpmError::io(&self.staging, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.staging);
        if self.created {
            // Only succeeds while empty: never removes anything but what this run made.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Save the model's weights to `path` (burn's burnpack format), atomically: the record is
/// written beside the target and renamed over it, so a crash never leaves a broken file.
/// A [`crate::model::Network`] is saved by [`crate::model::Network::save`].
pub fn save_model<M: Module>(model: &M, path: &Path) -> Result<()> {
    let tmp = temp_path_for(path);
    let result = model
        .clone()
        .into_record()
        .save(&tmp)
        .map_err(|e| DdpmError::Record {
            path: path.to_path_buf(),
            message: format!("{e:?}"),
        })
        .and_then(|()| commit(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub(crate) const MISMATCH: &str = "its weights do not fit the configured network";

/// Load weights saved by [`save_model`] into `fresh`, a network of the architecture they were
/// saved from (any [`Module`]).
pub fn load_weights<M: Module>(fresh: M, path: &Path) -> Result<M> {
    let fail = |message: String| DdpmError::Record {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(fail(
            "no such file; train a model first (`cargo run --release` writes outputs/model.bpk)"
                .into(),
        ));
    }
    // Read the whole file into memory: a record loaded from a path reads its tensors from the
    // file lazily, so a model loaded that way would fail (panicking inside burn) once the file
    // is replaced or deleted, e.g. by the next run writing the same outputs/model.bpk.
    let bytes = std::fs::read(path).map_err(|e| DdpmError::io(path, e))?;
    let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| {
            fail(format!(
                "not a readable model record (truncated or corrupt?): {e:?}"
            ))
        })?;
    fresh.try_load_record(record).map_err(|e| {
        fail(format!(
            "{MISMATCH}: {}",
            truncate_chars(&format!("{e:?}"), 240)
        ))
    })
}

/// At most `max` characters of `text`, marked when cut (burn lists every mismatched tensor).
fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{} ...", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ddpm-io-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn committed_files_replace_the_old_ones_and_nothing_else_remains() {
        let dir = scratch("commit");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "old").unwrap();
        std::fs::write(dir.join("keep.txt"), "kept").unwrap();
        let staged = StagedDir::create(&dir).unwrap();
        write_atomic(&staged.path().join("a.txt"), b"new").unwrap();
        write_atomic(&staged.path().join("b.txt"), b"b").unwrap();
        // Until the commit, the directory still shows the old run.
        assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "old");
        assert!(!dir.join("b.txt").exists());
        staged.commit().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.txt", "b.txt", "keep.txt"]);
        assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "new");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_run_leaves_the_last_good_outputs_untouched() {
        let dir = scratch("fail");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "old").unwrap();
        {
            let staged = StagedDir::create(&dir).unwrap();
            write_atomic(&staged.path().join("a.txt"), b"half of a run").unwrap();
            // dropped without commit, as on an error
        }
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "old");
        std::fs::remove_dir_all(&dir).unwrap();

        // A directory the failed run created is removed again.
        let fresh = scratch("fresh");
        drop(StagedDir::create(&fresh.join("out")).unwrap());
        assert!(!fresh.join("out").exists());
        let _ = std::fs::remove_dir_all(&fresh);
    }

    #[test]
    fn an_unusable_directory_is_reported_at_creation_naming_it() {
        let dir = scratch("file");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let err = StagedDir::create(&file.join("out"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not-a-dir/out") && err.contains("output directory"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
