//! The feeds, `feed.xsl` and `related.json` served from the output folder, so a blog without its own web server
//! can point readers at tidings. Only those kinds of file (`.xml`, `.xsl`, `.json`) under the output folder are
//! served; anything else is a 404.
//!
//! Each answer carries a strong ETag (a hash of the bytes, computed once per change of the file) and
//! Last-Modified (a build rewrites a file only when its bytes change, so its time is when its content did);
//! `If-None-Match` and, without it, `If-Modified-Since` get a 304 with no body, as RFC 9110 says.

use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Context, Shared};

/// The file under `root` that `path` (a URL path) names, if it is one we serve.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path.trim_start_matches('/'))?;
    let rel = Path::new(&decoded);
    let plain = rel.components().all(|c| match c {
        Component::Normal(part) => !part.to_string_lossy().starts_with('.'),
        _ => false,
    });
    let served = matches!(
        rel.extension().and_then(|e| e.to_str()),
        Some("xml" | "xsl" | "json")
    );
    (plain && served && !decoded.is_empty()).then(|| root.join(rel))
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match (
        path.file_name().and_then(|n| n.to_str()),
        path.extension().and_then(|e| e.to_str()),
    ) {
        (Some("feed.json"), _) => "application/feed+json; charset=utf-8",
        (_, Some("json")) => "application/json; charset=utf-8",
        (_, Some("xsl")) => "text/xsl; charset=utf-8",
        // Not application/rss+xml: browsers download that instead of showing the feed through feed.xsl.
        _ => "application/xml; charset=utf-8",
    }
}

/// An HTTP date (IMF-fixdate), as Last-Modified wants.
fn http_date(t: SystemTime) -> String {
    DateTime::<Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, as RFC 9110 says for this header).
fn none_match(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// Whether the file (modified at `modified`) is no newer than an `If-Modified-Since` date.
fn not_modified_since(value: &str, modified: SystemTime) -> bool {
    let Ok(since) = DateTime::parse_from_rfc2822(value) else {
        return false;
    };
    DateTime::<Utc>::from(modified).timestamp() <= since.timestamp()
}

/// The ETag of the file at `path` with these metadata, hashing its bytes only when they changed.
fn etag(ctx: &Shared, path: &Path, modified: SystemTime, len: u64, bytes: &[u8]) -> String {
    let mut cache = ctx
        .etags
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((m, l, tag)) = cache.get(path)
        && *m == modified
        && *l == len
    {
        return tag.clone();
    }
    let tag = format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..16]));
    cache.insert(path.to_owned(), (modified, len, tag.clone()));
    tag
}

pub(super) async fn file(
    Extract(ctx): Extract<Context>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = &ctx.0;
    let not_found = || {
        ctx.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no page at this address.",
        )
    };
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let Some(path) = resolve(&ctx.config.feeds.output, uri.path()) else {
        return not_found();
    };
    // Read whole: the bytes and their metadata come from one open file, so a build switching the folder
    // underneath cannot pair one version's ETag with another's body.
    let read = tokio::task::spawn_blocking({
        let path = path.clone();
        move || -> std::io::Result<(Vec<u8>, SystemTime)> {
            use std::io::Read;
            let mut file = std::fs::File::open(&path)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(std::io::ErrorKind::NotFound.into());
            }
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            file.read_to_end(&mut bytes)?;
            Ok((bytes, meta.modified()?))
        }
    })
    .await;
    let (bytes, modified) = match read {
        Ok(Ok(found)) => found,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
        Ok(Err(e)) => return ctx.failed(format!("{}: {e}", path.display())),
        Err(e) => return ctx.failed(e),
    };
    let tag = etag(ctx, &path, modified, bytes.len() as u64, &bytes);
    let last_modified = http_date(modified);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let unchanged = match header("if-none-match") {
        Some(value) => none_match(value, &tag),
        None => header("if-modified-since").is_some_and(|v| not_modified_since(v, modified)),
    };
    let mut builder = Response::builder()
        .header(header::ETAG, &tag)
        .header(header::LAST_MODIFIED, &last_modified)
        // Readers may keep a copy but must ask again (cheaply, with the ETag) before using it.
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if unchanged {
        builder = builder.status(StatusCode::NOT_MODIFIED);
        return builder.body(Body::empty()).expect("valid headers");
    }
    builder = builder
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type(&path))
        .header(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    builder.body(body).expect("valid headers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_feed_files_inside_the_output_folder_are_served() {
        let root = Path::new("/srv/public");
        assert_eq!(
            resolve(root, "/rss.xml"),
            Some(PathBuf::from("/srv/public/rss.xml"))
        );
        assert_eq!(
            resolve(root, "/category/career/atom.xml"),
            Some(PathBuf::from("/srv/public/category/career/atom.xml"))
        );
        assert_eq!(
            resolve(root, "/category/%C3%A9conomie/feed.json"),
            Some(PathBuf::from("/srv/public/category/économie/feed.json"))
        );
        for refused in [
            "/",
            "/../etc/passwd.xml",
            "/%2e%2e/secret.json",
            "/.hidden.xml",
            "/tidings.db",
            "/index.html",
            "/a/%zz.xml",
        ] {
            assert_eq!(resolve(root, refused), None, "{refused}");
        }
    }

    #[test]
    fn conditional_headers_compare_as_rfc_9110_says() {
        assert!(none_match("\"abc\"", "\"abc\""));
        assert!(none_match("W/\"abc\", \"x\"", "\"abc\""));
        assert!(none_match("*", "\"abc\""));
        assert!(!none_match("\"abd\"", "\"abc\""));
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let date = http_date(t);
        assert_eq!(date, "Sun, 09 Sep 2001 01:46:40 GMT");
        assert!(not_modified_since(&date, t));
        assert!(!not_modified_since(
            &date,
            t + std::time::Duration::from_secs(1)
        ));
        assert!(!not_modified_since("yesterday", t));
    }
}
