//! Writing files so that a reader never sees half of one: write beside the target, flush to
//! disk, rename over it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{DdpmError, Result};

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
