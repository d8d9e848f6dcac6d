//! Writing output files atomically and only when their bytes change.
//!
//! A file is written to a temporary file in the same folder and renamed over the old one, so a reader (a web
//! server, a feed fetcher) never sees half a feed. A file whose bytes are already on disk is not touched, so its
//! mtime, and the ETag a server derives from it, stay the same across rebuilds.

use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    Unchanged,
}

/// Writes `bytes` to `path` unless it already holds exactly them; creates parent folders.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<WriteOutcome> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(WriteOutcome::Unchanged);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tidings-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // tempfile creates files 0600; published files are meant to be read by a web server.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(WriteOutcome::Written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_bytes_leave_the_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.xml");
        assert_eq!(
            write_if_changed(&path, b"one").unwrap(),
            WriteOutcome::Written
        );
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            write_if_changed(&path, b"one").unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        assert_eq!(
            write_if_changed(&path, b"two").unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
