//! Writing output files atomically and only when their bytes change; what to write (feeds, `related.json`,
//! outbox messages) is the callers'.
//!
//! A file is written to a temporary file in the same folder, synced, and renamed over the old one, so a reader
//! (a web server, a feed fetcher) never sees half a feed. A file whose bytes are already on disk is not touched
//! ([`WriteOutcome::Unchanged`]), so its mtime, and the ETag a server derives from it, stay the same across
//! rebuilds. Published files are made 0644 ([`write_if_changed`]); private ones, such as outbox messages that
//! carry an address and an unsubscribe token, 0600 ([`write_private_if_changed`]).

use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    Unchanged,
}

/// Writes a public file (mode 0644: published files are meant to be read by a web server) unless it already
/// holds exactly `bytes`; creates parent folders.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<WriteOutcome> {
    write_if_changed_with_mode(path, bytes, 0o644)
}

/// [`write_if_changed`] for a file only its owner may read (mode 0600), such as a message in the outbox, which
/// carries the recipient's address and unsubscribe token.
pub fn write_private_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<WriteOutcome> {
    write_if_changed_with_mode(path, bytes, 0o600)
}

fn write_if_changed_with_mode(
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<WriteOutcome> {
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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
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
        // An mtime long past instead of a sleep: a rewrite would replace it with the time of writing.
        let long_ago =
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let mtime = || std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(
            write_if_changed(&path, b"one").unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(mtime(), long_ago, "unchanged bytes are not written");
        assert_eq!(
            write_if_changed(&path, b"two").unwrap(),
            WriteOutcome::Written
        );
        assert_ne!(mtime(), long_ago, "changed bytes are written");
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[cfg(unix)]
    #[test]
    fn public_files_are_world_readable_and_private_ones_are_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let feed = dir.path().join("rss.xml");
        write_if_changed(&feed, b"x").unwrap();
        assert_eq!(mode(&feed), 0o644);
        let mail = dir.path().join("a.eml");
        write_private_if_changed(&mail, b"x").unwrap();
        assert_eq!(mode(&mail), 0o600);
    }
}
