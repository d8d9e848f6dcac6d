//! Writing output files atomically and only when their bytes change; what to write (feeds, `related.json`,
//! outbox messages) is the callers'.
//!
//! A single file is written to a temporary file in the same folder, synced, and renamed over the old one, so a
//! reader (a web server, a feed fetcher) never sees half a file. A file whose bytes are already on disk is not
//! touched ([`WriteOutcome::Unchanged`]), so its mtime, and the ETag a server derives from it, stay the same
//! across rebuilds. Published files are made 0644 ([`write_if_changed`]); private ones, such as outbox messages
//! that carry an address and an unsubscribe token, 0600 ([`write_private_if_changed`]).
//!
//! A build's files are published together ([`Staged`]): the output folder is mirrored beside itself (hard links,
//! so unchanged files keep their inode and mtime), the changed files are written into the copy, and the copy is
//! switched in with one rename that exchanges the two folders. A reader sees all of the old build or all of the
//! new one, and a build killed half-way leaves the published folder as it was; the next build removes what the
//! killed one left behind (its staging folder, stray `.tidings-*` temporary files).

use std::io::Write;
use std::path::{Path, PathBuf};

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

/// A build's output, written into a staging copy of the output folder and published with one switch
/// ([`Staged::commit`]). Dropped without a commit, it removes the copy and the published folder stays as it was.
#[derive(Debug)]
pub struct Staged {
    /// The published folder (symlinks resolved).
    target: PathBuf,
    /// Where this build writes: a copy beside `target`, or `target` itself when no copy can be made there.
    stage: PathBuf,
    in_place: bool,
    changed: bool,
    committed: bool,
}

/// What [`Staged::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The new build replaced the old one in one step.
    Switched,
    /// No file changed: the published folder was left as it was.
    Unchanged,
    /// No staging copy could be made beside the output folder (no write permission on its parent, a mount
    /// point): each file was replaced atomically on its own.
    InPlace,
}

const STAGE_MARK: &str = ".tidings-stage-";

impl Staged {
    /// Starts a build that publishes into `target`: removes what a killed build left behind, then mirrors
    /// `target` into a fresh staging folder beside it. When one of `live` (paths other parts of the program
    /// write to while a build runs: a database, the outbox, the store) lies inside `target`, the folder is not
    /// switched, since what they write meanwhile would be left in the old copy: each file is replaced on its own.
    pub fn begin(target: &Path, live: &[&Path]) -> std::io::Result<Staged> {
        std::fs::create_dir_all(target)?;
        let target = std::fs::canonicalize(target)?;
        remove_stale(&target);
        if let Some(inside) = live.iter().find(|p| absolute(p).starts_with(&target)) {
            tracing::warn!(
                folder = %target.display(),
                inside = %inside.display(),
                "the output folder holds a file tidings writes elsewhere; writing each file in place instead of \
                 switching the folder (give [feeds] output a folder of its own)"
            );
            return Ok(Staged::in_place(target));
        }
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Ok(Staged::in_place(target));
        };
        let stage = parent.join(format!(
            ".{}{STAGE_MARK}{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        if stage.exists() {
            std::fs::remove_dir_all(&stage)?;
        }
        if std::fs::create_dir(&stage).is_err() {
            tracing::warn!(
                folder = %target.display(),
                "cannot create a staging folder beside the output folder; writing each file in place"
            );
            return Ok(Staged::in_place(target));
        }
        let staged = Staged {
            target,
            stage,
            in_place: false,
            changed: false,
            committed: false,
        };
        mirror(&staged.target, &staged.stage)?;
        Ok(staged)
    }

    fn in_place(target: PathBuf) -> Staged {
        Staged {
            stage: target.clone(),
            target,
            in_place: true,
            changed: false,
            committed: false,
        }
    }

    /// Where `rel` is published once the build is committed.
    pub fn published_path(&self, rel: &str) -> PathBuf {
        self.target.join(rel)
    }

    /// Writes `rel` (a path under the output folder) into the build unless the published file already holds
    /// exactly `bytes`.
    pub fn write(&mut self, rel: &str, bytes: &[u8]) -> std::io::Result<WriteOutcome> {
        // The staged file is a hard link to the published one: `write_if_changed` replaces it by a rename, never
        // writing through the link into the published file.
        let outcome = write_if_changed(&self.stage.join(rel), bytes)?;
        self.changed |= outcome == WriteOutcome::Written;
        Ok(outcome)
    }

    /// Publishes the build: the staging folder and the output folder swap places in one rename, and the old
    /// build is removed.
    pub fn commit(mut self) -> std::io::Result<CommitOutcome> {
        self.committed = true;
        if self.in_place {
            return Ok(CommitOutcome::InPlace);
        }
        if !self.changed {
            std::fs::remove_dir_all(&self.stage)?;
            return Ok(CommitOutcome::Unchanged);
        }
        exchange(&self.stage, &self.target)?;
        // The stage path now holds the old build.
        std::fs::remove_dir_all(&self.stage)?;
        Ok(CommitOutcome::Switched)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed && !self.in_place {
            let _ = std::fs::remove_dir_all(&self.stage);
        }
    }
}

/// `path` made absolute with its symlinks resolved as far as it exists (a database file may not exist yet).
fn absolute(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return path.to_owned(),
        }
    }
    let mut resolved = std::fs::canonicalize(existing).unwrap_or_else(|_| existing.to_owned());
    resolved.extend(rest.iter().rev());
    resolved
}

/// Swaps two folders in one step (Linux `renameat2(RENAME_EXCHANGE)`); where the file system cannot, moves the old
/// one aside and the new one in (two renames: for that instant the folder is missing, but never mixed).
fn exchange(new: &Path, old: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, new, CWD, old, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    let aside = new.with_extension("old");
    std::fs::rename(old, &aside)?;
    std::fs::rename(new, old)?;
    std::fs::rename(&aside, new)
}

/// Recreates `from`'s tree under `to`: folders created, files hard-linked (copied where links are not possible,
/// keeping their mtime), symlinks recreated.
fn mirror(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(from)
            .expect("walkdir yields paths under its root");
        let dest = to.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if kind.is_symlink() {
            #[cfg(unix)]
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dest)?;
        } else if std::fs::hard_link(entry.path(), &dest).is_err() {
            std::fs::copy(entry.path(), &dest)?;
            let mtime = entry
                .metadata()
                .map_err(std::io::Error::other)?
                .modified()?;
            std::fs::File::options()
                .write(true)
                .open(&dest)?
                .set_modified(mtime)?;
        }
    }
    Ok(())
}

/// Removes what a killed build left: staging folders beside `target` whose build is no longer running, and
/// `.tidings-*` temporary files inside it. Best effort: a leftover that cannot be removed is only logged.
fn remove_stale(target: &Path) {
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let prefix = format!(".{}{STAGE_MARK}", name.to_string_lossy());
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = file_name.strip_prefix(&prefix) else {
                continue;
            };
            let pid = pid.trim_end_matches(".old");
            if pid.parse::<u32>().is_ok_and(|pid| !running(pid)) {
                remove_logged(&entry.path(), std::fs::remove_dir_all(entry.path()));
            }
        }
    }
    for entry in walkdir::WalkDir::new(target).into_iter().flatten() {
        if entry.file_type().is_file()
            && entry.file_name().to_string_lossy().starts_with(".tidings-")
        {
            remove_logged(entry.path(), std::fs::remove_file(entry.path()));
        }
    }
}

fn remove_logged(path: &Path, result: std::io::Result<()>) {
    match result {
        Ok(()) => tracing::info!(path = %path.display(), "removed what an interrupted build left"),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove what an interrupted build left")
        }
    }
}

/// Whether process `pid` is alive (this process included). Without `/proc`, every build is taken as running,
/// so a concurrent build's folder is never removed.
fn running(pid: u32) -> bool {
    pid == std::process::id()
        || !Path::new("/proc/self").exists()
        || Path::new(&format!("/proc/{pid}")).exists()
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

    fn published(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                (rel, std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    fn siblings(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_staged_build_is_invisible_until_committed_then_whole() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("public");
        let mut first = Staged::begin(&out, &[]).unwrap();
        first.write("rss.xml", b"old rss").unwrap();
        first.write("category/a/rss.xml", b"old a").unwrap();
        first.commit().unwrap();
        std::fs::write(out.join("robots.txt"), b"mine").unwrap();

        let mut second = Staged::begin(&out, &[]).unwrap();
        assert_eq!(
            second.write("rss.xml", b"new rss").unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(
            second.write("category/a/rss.xml", b"old a").unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(
            std::fs::read(out.join("rss.xml")).unwrap(),
            b"old rss",
            "readers see the old build while the new one is written"
        );
        assert_eq!(second.commit().unwrap(), CommitOutcome::Switched);
        assert_eq!(
            published(&out),
            [
                ("category/a/rss.xml".to_string(), b"old a".to_vec()),
                ("robots.txt".to_string(), b"mine".to_vec()),
                ("rss.xml".to_string(), b"new rss".to_vec()),
            ]
        );
        assert_eq!(siblings(&out), ["public"], "no staging folder is left");
    }

    #[test]
    fn a_build_that_changes_nothing_leaves_the_folder_and_its_mtimes_alone() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("public");
        let mut first = Staged::begin(&out, &[]).unwrap();
        first.write("rss.xml", b"same").unwrap();
        first.commit().unwrap();
        let long_ago =
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(out.join("rss.xml"))
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        let mut second = Staged::begin(&out, &[]).unwrap();
        assert_eq!(
            second.write("rss.xml", b"same").unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(second.commit().unwrap(), CommitOutcome::Unchanged);
        let mtime = std::fs::metadata(out.join("rss.xml"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(mtime, long_ago);
        assert_eq!(siblings(&out), ["public"]);
    }

    #[test]
    fn a_build_dropped_half_way_leaves_the_published_folder_as_it_was() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("public");
        let mut first = Staged::begin(&out, &[]).unwrap();
        first.write("rss.xml", b"old").unwrap();
        first.write("atom.xml", b"old").unwrap();
        first.commit().unwrap();
        let mut failed = Staged::begin(&out, &[]).unwrap();
        failed.write("rss.xml", b"new").unwrap();
        drop(failed);
        assert_eq!(
            published(&out),
            [
                ("atom.xml".to_string(), b"old".to_vec()),
                ("rss.xml".to_string(), b"old".to_vec()),
            ]
        );
        assert_eq!(siblings(&out), ["public"]);
    }

    #[test]
    fn an_output_folder_holding_a_live_file_is_written_in_place() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("site");
        let db = out.join("data/tidings.db");
        let mut build = Staged::begin(&out, &[&db]).unwrap();
        build.write("rss.xml", b"x").unwrap();
        assert_eq!(
            std::fs::read(out.join("rss.xml")).unwrap(),
            b"x",
            "written in place at once"
        );
        assert_eq!(build.commit().unwrap(), CommitOutcome::InPlace);
        assert_eq!(siblings(&out), ["site"]);
    }

    #[test]
    fn what_a_killed_build_left_is_removed_by_the_next() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("public");
        std::fs::create_dir_all(out.join("category/a")).unwrap();
        std::fs::write(out.join("rss.xml"), b"old").unwrap();
        std::fs::write(out.join(".tidings-AbC123"), b"half a feed").unwrap();
        std::fs::write(out.join("category/a/.tidings-x"), b"half").unwrap();
        // A staging folder of a process that no longer runs (pid 0 never names a build).
        let dead = root.path().join(format!(".public{STAGE_MARK}0"));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("rss.xml"), b"half").unwrap();
        let mut build = Staged::begin(&out, &[]).unwrap();
        build.write("rss.xml", b"new").unwrap();
        build.commit().unwrap();
        assert_eq!(published(&out), [("rss.xml".to_string(), b"new".to_vec())]);
        assert_eq!(siblings(&out), ["public"]);
    }
}
