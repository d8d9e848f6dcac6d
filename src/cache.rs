//! The build cache: what one `tidings build` leaves beside the state database so the next one can skip work.
//! Two files in one folder ([`dir`]):
//!
//! - `build.manifest`, small ([`Manifest`]): every store file's size and mtime, every published file's, the span
//!   of `now` in which the same articles are published, and the build's report. A build whose store, output,
//!   config and clock all match it has nothing to do: it stats files, reads nothing else and writes nothing.
//! - `articles.cache`, every file's parse without its body ([`crate::store::cache`]: metadata and term counts,
//!   about 1.8 KB an article): after a change, only changed files (and those whose links now resolve
//!   elsewhere) are parsed again.
//!
//! Each file starts with a header: a magic string, the format version, tidings' version and the key (a hash of
//! the config sections a build reads), and ends with a checksum of the rest. A file made by another format,
//! version or config is ignored; so is a corrupt or truncated one, with a warning. Either way the build goes on
//! from scratch and writes a good cache: the cache can make a build faster, never different or failed. The
//! cache is a local folder even when the state moves to PostgreSQL; it is no part of the `State` interface.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::state::StateLocation;
use crate::store::cache::Stamp;
use crate::store::{ArticleError, Catalog};

/// Bumped whenever what the files hold changes shape or meaning.
const FORMAT: u32 = 5;
const MAGIC: [u8; 8] = *b"tidings\0";

pub const MANIFEST: &str = "build.manifest";
pub const ARTICLES: &str = "articles.cache";

/// Where the cache lives: `tidings-cache/` beside the SQLite state file; with PostgreSQL state, a hidden
/// `.tidings-cache/` beside the output folder.
pub fn dir(config: &Config) -> PathBuf {
    match &config.state.database {
        StateLocation::Sqlite(db) => db.parent().unwrap_or(Path::new(".")).join("tidings-cache"),
        StateLocation::Postgres(_) => config
            .feeds
            .output
            .parent()
            .unwrap_or(Path::new("."))
            .join(".tidings-cache"),
    }
}

/// The hash of everything in config that a build's output depends on: a change to any of it starts from
/// nothing. (Debug output is deterministic here: config holds no hash maps.)
pub fn key(config: &Config) -> u64 {
    let described = format!(
        "{:?}\n{:?}\n{:?}\n{:?}",
        config.site, config.authors, config.feeds, config.related
    );
    xxhash_rust::xxh3::xxh3_64(described.as_bytes())
}

#[derive(Serialize, Deserialize)]
struct Header {
    magic: [u8; 8],
    format: u32,
    version: String,
    key: u64,
}

/// Reads a cache file made with `key` by this version of tidings; `None` when there is none, it was made by
/// another version or config (quietly), or it is corrupt or truncated (with a warning).
pub fn read<T: DeserializeOwned>(path: &Path, key: u64) -> Option<T> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the build cache; building without it");
            return None;
        }
    };
    let corrupt = |why: &str| {
        tracing::warn!(path = %path.display(), "the build cache is {why}; building without it (it is rewritten)");
        None
    };
    let Some(split) = bytes.len().checked_sub(8) else {
        return corrupt("truncated");
    };
    let (body, sum) = bytes.split_at(split);
    if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
        return corrupt("corrupt or truncated (its checksum does not match)");
    }
    let Ok((header, payload)) = postcard::take_from_bytes::<Header>(body) else {
        return corrupt("corrupt (no header)");
    };
    if header.magic != MAGIC {
        return corrupt("not a tidings cache");
    }
    if header.format != FORMAT || header.version != env!("CARGO_PKG_VERSION") || header.key != key {
        tracing::debug!(path = %path.display(), "the build cache was made by another version or config; rebuilding it");
        return None;
    }
    match postcard::from_bytes(payload) {
        Ok(value) => Some(value),
        Err(_) => corrupt("corrupt (it does not decode)"),
    }
}

/// A writer that hashes what passes through it (the checksum at the end of a cache file).
struct Summing<W> {
    inner: W,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `value` as a cache file made with `key`: streamed (a large cache is never held twice in memory) to a
/// temporary file, then renamed into place, so a reader sees the old file or the new one.
pub fn write<T: Serialize>(path: &Path, key: u64, value: &T) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let tmp = tempfile::NamedTempFile::new_in(folder)?;
    // Buffered before the checksum, so it hashes large blocks rather than each small write of the serializer.
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        Summing {
            inner: tmp.reopen()?,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
        },
    );
    let header = Header {
        magic: MAGIC,
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").into(),
        key,
    };
    postcard::to_io(&header, &mut out).map_err(std::io::Error::other)?;
    postcard::to_io(value, &mut out).map_err(std::io::Error::other)?;
    let summing = out.into_inner().map_err(|e| e.into_error())?;
    let sum = summing.hasher.digest().to_le_bytes();
    let mut file = summing.inner;
    file.write_all(&sum)?;
    file.flush()?;
    drop(file);
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// [`write`], a failure only logged: a build that cannot keep its cache is still a good build.
pub fn write_logged<T: Serialize>(path: &Path, key: u64, value: &T) {
    if let Err(e) = write(path, key, value) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the build cache; the next build starts from scratch");
    }
}

/// The span of `now` in which a catalog publishes the same articles: from the last time an article's date or
/// expiry came (when some article is published: an empty store's feeds are dated by `now`) to (before) the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: Option<DateTime<FixedOffset>>,
    pub until: Option<DateTime<FixedOffset>>,
}

impl Window {
    pub fn of(catalog: &Catalog, now: DateTime<FixedOffset>) -> Window {
        let changes = || {
            catalog
                .all()
                .iter()
                .filter(|a| !a.draft)
                .flat_map(|a| [Some(a.date), a.expires])
                .flatten()
        };
        Window {
            from: catalog
                .published(now)
                .next()
                .and_then(|_| changes().filter(|&at| at <= now).max()),
            until: changes().filter(|&at| at > now).min(),
        }
    }

    pub fn contains(&self, now: DateTime<FixedOffset>) -> bool {
        self.from.is_some_and(|from| from <= now) && self.until.is_none_or(|until| now < until)
    }
}

/// What a build read and wrote, to tell whether the next build would do exactly the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// When the build started: a file changed within [`crate::store::cache::SETTLE`] of it is not vouched for.
    pub started: SystemTime,
    /// The store folder's stamp (its mtime dates an empty store's feeds).
    pub store: Option<Stamp>,
    /// Every store file, in path order, with its stamp when read.
    pub sources: Vec<(PathBuf, Stamp)>,
    /// Every published file, with its stamp once published.
    pub outputs: Vec<(PathBuf, Stamp)>,
    pub window: Window,
    pub published: usize,
    pub feeds: usize,
    pub errors: Vec<ArticleError>,
}

impl Manifest {
    /// How many articles this build published, when `related` (the `related.json` it wrote) is still the very
    /// file it left: then the count need not be read back from it.
    pub fn published_if_current(&self, related: &Path) -> Option<usize> {
        let (_, stamp) = self.outputs.iter().find(|(p, _)| p == related)?;
        (Stamp::read(related) == Some(*stamp)).then_some(self.published)
    }

    /// Whether a build at `now` would read and write exactly what this one did: the same store files with the
    /// same stamps, settled before this build started; the published files as it left them; `now` in the same
    /// window. Only metadata is read (one `stat` per file); `listing` is the store's files as
    /// [`crate::store::find_sources`] gives them now (a build that goes on loads from the same listing).
    pub fn still_holds(
        &self,
        config: &Config,
        now: DateTime<FixedOffset>,
        (paths, errors): &(Vec<PathBuf>, Vec<ArticleError>),
    ) -> bool {
        use rayon::prelude::*;
        if !self.window.contains(now) || Stamp::read(&config.site.articles) != self.store {
            return false;
        }
        if !errors.is_empty()
            || paths.len() != self.sources.len()
            // As bytes: comparing paths component by component costs more than every stat together.
            || paths
                .iter()
                .zip(&self.sources)
                .any(|(a, (b, _))| a.as_os_str() != b.as_os_str())
        {
            return false;
        }
        let started = self.started;
        self.sources
            .par_iter()
            .all(|(path, stamp)| stamp.settled_before(started) && Stamp::read(path) == Some(*stamp))
            && self
                .outputs
                .par_iter()
                .all(|(path, stamp)| Stamp::read(path) == Some(*stamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_file_is_read_back_only_with_its_key_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.cache");
        let value = vec!["one".to_string(), "two".to_string()];
        write(&path, 7, &value).unwrap();
        assert_eq!(read::<Vec<String>>(&path, 7), Some(value));
        assert_eq!(read::<Vec<String>>(&path, 8), None, "another config's key");
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 4, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert_eq!(read::<Vec<String>>(&path, 7), None, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[bytes.len() - 12] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(read::<Vec<String>>(&path, 7), None, "a flipped byte");
        assert_eq!(read::<Vec<String>>(&dir.path().join("none"), 7), None);
    }

    #[test]
    fn the_published_count_is_taken_from_the_manifest_only_while_related_json_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let related = dir.path().join("related.json");
        std::fs::write(&related, "{}").unwrap();
        let manifest = Manifest {
            started: SystemTime::now(),
            store: None,
            sources: Vec::new(),
            outputs: vec![(related.clone(), Stamp::read(&related).unwrap())],
            window: Window {
                from: None,
                until: None,
            },
            published: 42,
            feeds: 1,
            errors: Vec::new(),
        };
        assert_eq!(manifest.published_if_current(&related), Some(42));
        assert_eq!(
            manifest.published_if_current(&dir.path().join("other.json")),
            None
        );
        std::fs::write(&related, r#"{"a": []}"#).unwrap();
        assert_eq!(
            manifest.published_if_current(&related),
            None,
            "rewritten since"
        );
        std::fs::remove_file(&related).unwrap();
        assert_eq!(manifest.published_if_current(&related), None, "gone");
    }
}
