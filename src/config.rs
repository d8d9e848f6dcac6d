//! `config.toml` → a typed, validated [`Config`].
//!
//! Loading goes in two steps, as in ripgrep: the raw TOML (plus `TIDINGS_<SECTION>_<KEY>` environment overrides)
//! is deserialized into serde structs with defaults, where values with a shape of their own are parsed once into
//! their real types (the time zone, cron schedules, mailboxes, the state location) and a bad one is reported with
//! its key path (`serde_path_to_error`) and, when it came from the environment, the variable's name; then
//! [`Config::validate`] checks what one value alone cannot say and collects every such problem before reporting. Relative paths are resolved against the
//! config file's folder so `tidings --config /srv/blog/config.toml build` works from any directory.
//!
//! This module owns the config's shape and defaults; it does not read articles or secrets other than through the
//! environment overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer, de::Error as _};
use url::Url;

use crate::digest::Schedule;
use crate::state::StateLocation;

/// Every problem with the configuration, each naming the key (and, for TOML syntax, the line) and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not there. The caller names the path (`loading config.toml: …`), so this says only what to do.
    #[error(
        "no such config file; pass --config PATH (or set TIDINGS_CONFIG) to use another, or create it (the README \
         shows a minimal one)"
    )]
    Missing { path: PathBuf },
    // `error` rather than `source`: the message already carries it, and a chain would print it twice.
    #[error("{path}: cannot read config: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}:{col}: error: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{origin}: error: {key}: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ConfigError>),
}

/// The whole configuration, with paths resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub site: SiteConfig,
    #[serde(default)]
    pub authors: BTreeMap<String, AuthorConfig>,
    #[serde(default)]
    pub feeds: FeedsConfig,
    #[serde(default)]
    pub related: RelatedConfig,
    #[serde(default)]
    pub newsletter: NewsletterConfig,
    /// `[[digest]]` tables, one per newsletter.
    #[serde(default)]
    pub digest: Vec<DigestConfig>,
    #[serde(default)]
    pub mail: MailConfig,
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub title: String,
    /// The site's public root, e.g. `https://example.com/` (a trailing slash is added when missing).
    pub base_url: Url,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_language")]
    pub language: String,
    /// An IANA zone name; naive dates in front matter and digest schedules are read in it.
    #[serde(default = "default_timezone", deserialize_with = "timezone")]
    pub timezone: Tz,
    /// The article store: a folder searched recursively for `*.md`.
    #[serde(default = "default_articles")]
    pub articles: PathBuf,
    /// Where an article lives on the site: `{slug}`, `{title}` (the title's slug, Hugo's `:title`),
    /// `{slug_or_title}` (a written slug, else the title's: Hugo's `:slug`), `{year}`, `{month}`, `{day}`,
    /// `{category}` (the first
    /// category's slug, `uncategorized` without one), `{categories}` (every category as folders, none without
    /// one, as Jekyll's `:categories`), `{section}` and `{sections}` (the first / every folder the file is in below
    /// `articles`, lowercased, as Hugo's `:section` / `:sections`; none at the top) are replaced.
    #[serde(default = "default_permalink")]
    pub permalink: String,
    #[serde(default = "default_wpm")]
    pub reading_wpm: u32,
    /// The author of articles that name none (a key of `[authors]`).
    #[serde(default)]
    pub default_author: Option<String>,
    /// Files larger than this are reported and skipped, so a stray 50 MB file cannot stall a build.
    #[serde(default = "default_max_article_bytes")]
    pub max_article_bytes: u64,
    /// Whose conventions the store follows. `auto` (the default) looks for the generator's own config beside
    /// the store (`_config.yml`, `hugo.toml`, Zola's `config.toml`…) and, when there is
    /// none, decides per file.
    #[serde(default)]
    pub generator: Generator,
    /// Hugo only: whether a `YYYY-MM-DD-` file-name prefix is a date, left out of the slug (Hugo's config says
    /// `:filename` under `[frontmatter]`), rather than part of the slug as Hugo has it by default. Worked out
    /// with `generator`.
    #[serde(skip)]
    pub hugo_name_dates: bool,
    /// Jekyll only: the text values of the site's `_config.yml`, as Liquid's `site.*` reads them (`repository`,
    /// `author.name` for a nested one). `[site]`'s own `url`, `baseurl` and `title` come from tidings' config.
    #[serde(skip)]
    pub jekyll_config: std::sync::Arc<BTreeMap<String, String>>,
}

/// The text values of a Jekyll `_config.yml` (YAML; a `_config.toml` is TOML), nested keys joined with dots
/// (`author.name`), lists of text joined as Liquid prints them. A file that cannot be read gives none: its
/// values are then reported where a post uses them, as any unknown `site.*` is.
fn jekyll_site_values(file: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let value: serde_json::Value = if file.extension().is_some_and(|e| e == "toml") {
        toml::from_str::<toml::Value>(&text)
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or_default()
    } else {
        serde_yaml_ng::from_str(&text).unwrap_or_default()
    };
    fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            Value::Number(n) => {
                out.insert(prefix.to_owned(), n.to_string());
            }
            Value::Bool(b) => {
                out.insert(prefix.to_owned(), b.to_string());
            }
            Value::Array(items) if items.iter().all(Value::is_string) => {
                let joined = items.iter().filter_map(Value::as_str).collect::<String>();
                out.insert(prefix.to_owned(), joined);
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    flatten("", &value, &mut out);
    out
}

/// A static-site generator whose store tidings reads, for the conventions that differ between them: which
/// template syntax a body holds, and whether a dated file name's date is part of its slug.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// Not known: each file's own signs decide (a `_posts`-like folder or a dated name with YAML front matter:
    /// Jekyll; TOML front matter: Zola; else Hugo).
    #[default]
    Auto,
    Jekyll,
    Hugo,
    Zola,
}

impl Generator {
    /// The generator whose config file is in the store's folder or one of the three above it (`_posts`,
    /// `content/posts`), skipping `own` (tidings' config, which may sit there too): Jekyll's `_config.yml`,
    /// Hugo's `hugo.toml` (or `config.toml` / `.yaml` / `.json` with a `baseURL`, or `config/_default/`), Zola's
    /// `zola.toml` (or `config.toml` with a top-level `base_url`). With it, whether Hugo reads dates from file
    /// names (`:filename` in its config), and Jekyll's config file (whose values are Liquid's `site.*`). `Auto`
    /// when none is found.
    fn detect(store: &Path, own: &Path) -> (Generator, bool, Option<PathBuf>) {
        let own = std::fs::canonicalize(own).ok();
        let is_own = |p: &Path| own.is_some() && std::fs::canonicalize(p).ok() == own;
        let read = |p: &Path| {
            (!is_own(p))
                .then(|| std::fs::read_to_string(p).ok())
                .flatten()
        };
        for dir in store.ancestors().take(4) {
            if let Some(file) = ["_config.yml", "_config.yaml", "_config.toml"]
                .iter()
                .map(|f| dir.join(f))
                .find(|f| f.is_file() && !is_own(f))
            {
                return (Generator::Jekyll, false, Some(file));
            }
            if dir.join("zola.toml").is_file() {
                return (Generator::Zola, false, None);
            }
            let hugo_files = [
                "hugo.toml",
                "hugo.yaml",
                "hugo.yml",
                "hugo.json",
                "config/_default/hugo.toml",
                "config/_default/config.toml",
                "config/_default/hugo.yaml",
                "config/_default/config.yaml",
            ];
            if let Some(text) = hugo_files.iter().find_map(|f| read(&dir.join(f))) {
                return (Generator::Hugo, text.contains(":filename"), None);
            }
            if let Some(text) = read(&dir.join("config.toml"))
                && let Ok(table) = toml::from_str::<toml::Table>(&text)
            {
                if table.contains_key("base_url") {
                    return (Generator::Zola, false, None);
                }
                if table.keys().any(|k| k.eq_ignore_ascii_case("baseurl")) {
                    return (Generator::Hugo, text.contains(":filename"), None);
                }
            }
            for f in ["config.yaml", "config.yml", "config.json"] {
                if let Some(text) = read(&dir.join(f))
                    && text.to_ascii_lowercase().contains("baseurl")
                {
                    return (Generator::Hugo, text.contains(":filename"), None);
                }
            }
        }
        (Generator::Auto, false, None)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthorConfig {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub bio: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedFormat {
    Rss,
    Atom,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedsConfig {
    /// Output folder for feeds, `feed.xsl` and `related.json`.
    #[serde(default = "default_output")]
    pub output: PathBuf,
    /// Items per feed (newest first). Bounded by default: unbounded feeds grow to megabytes.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// `true`: items carry the whole article as HTML (plus the summary); `false`: the summary only.
    #[serde(default = "default_true")]
    pub full_content: bool,
    #[serde(default = "default_formats")]
    pub formats: Vec<FeedFormat>,
    #[serde(default = "default_true")]
    pub per_category: bool,
    #[serde(default)]
    pub per_tag: bool,
    #[serde(default)]
    pub per_author: bool,
    /// Write `feed.xsl` and reference it from the XML feeds, so a feed opened in a browser is a readable page.
    #[serde(default = "default_true")]
    pub stylesheet: bool,
    /// Categories that always get a feed, even before their first article is published.
    #[serde(default)]
    pub categories: Vec<String>,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [feeds] key has a default")
    }
}

/// `[newsletter]`: who digests come from and what every digest's headers and footer say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewsletterConfig {
    /// The sender, `"Name <address>"` or a bare address; required once a `[[digest]]` exists.
    #[serde(default, deserialize_with = "mailbox")]
    pub from: Option<Mailbox>,
    #[serde(default, deserialize_with = "mailbox")]
    pub reply_to: Option<Mailbox>,
    /// Where the subscribe / unsubscribe pages live; defaults to `site.base_url`.
    #[serde(default)]
    pub public_url: Option<Url>,
    /// The sender's postal address for the footer (anti-spam laws ask for one); required once a digest exists.
    #[serde(default)]
    pub postal_address: String,
    /// The domain-like part of `List-Id` (`<weekly.LIST_ID>`); defaults to the From address's domain.
    #[serde(default)]
    pub list_id: Option<String>,
    /// A folder whose `*.hbs` files override the built-in digest templates of the same name.
    #[serde(default = "default_templates")]
    pub templates: PathBuf,
}

impl Default for NewsletterConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [newsletter] key has a default")
    }
}

/// One `[[digest]]`: a named newsletter sent on a cron schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// Lowercase letters, digits, `-` and `_`; subscribers name it in their `digests`.
    pub name: String,
    /// A cron expression in `site.timezone`: 5-field crontab (`0 8 * * MON`) or 6/7 fields with seconds.
    #[serde(deserialize_with = "schedule")]
    pub schedule: Schedule,
    /// A Handlebars template for the Subject header (rendered without HTML escaping).
    #[serde(default = "default_subject")]
    pub subject: String,
    /// At most this many new articles per digest (the newest).
    #[serde(default = "default_max_articles")]
    pub max_articles: usize,
    /// Related-reading picks per new article (0: no related section).
    #[serde(default = "default_related")]
    pub related: usize,
    /// Only articles of these categories (empty: every category); a subscriber's own filter narrows it further.
    #[serde(default)]
    pub categories: Vec<String>,
}

/// `[mail]`: how messages leave, how fast, and what happens when they cannot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    #[serde(default)]
    pub transport: MailTransport,
    /// The folder the `file` transport writes `.eml` files to.
    #[serde(default = "default_outbox")]
    pub outbox: PathBuf,
    /// The `smtp` transport's server in lettre's URL form: `smtps://user@host:465` (implicit TLS) or
    /// `smtp://user@host:587?tls=required` (STARTTLS). The password comes from `TIDINGS_MAIL_PASSWORD`.
    #[serde(default)]
    pub smtp_url: Option<Url>,
    /// Allow plain `smtp://` without TLS to a host that is not loopback (a trusted network only).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// The `sendmail` transport's program.
    #[serde(default = "default_sendmail")]
    pub sendmail_command: PathBuf,
    /// Parallel SMTP connections, each reused across messages (twice as many messages are in flight: see
    /// `DeliverySettings::in_flight`).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// At most this many messages per second over the whole process (a relay's account limit); unset: no limit.
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Seconds to wait for the server to connect or answer.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Tries per message within one send (a 4xx, a dropped connection, a timeout); then it is left deferred for
    /// the next send of the tick.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The wait before the first retry of a message, doubled for each further one.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Permanent failures (5xx) in a row after which a subscriber is marked bounced and mailed no more.
    #[serde(default = "default_bounce_threshold")]
    pub bounce_threshold: usize,
    #[serde(default)]
    pub dkim: Option<DkimSettings>,
}

impl Default for MailConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [mail] key has a default")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// One `.eml` file per message in `[mail] outbox`: the default, so a new user sees real messages.
    #[default]
    File,
    /// An SMTP server (`[mail] smtp_url`): a relay such as Postmark or SES, or a local Postfix.
    Smtp,
    /// The local `sendmail` program (`[mail] sendmail_command`).
    Sendmail,
}

/// `[mail.dkim]`: sign every message (relaxed/relaxed) with this RSA key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSettings {
    pub selector: String,
    pub domain: String,
    /// A PEM RSA private key in PKCS#1 form (`openssl genrsa -traditional`), which is what lettre reads.
    pub key_file: PathBuf,
}

/// `[state]`: where subscribers, runs and deliveries live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// An SQLite file path (created with its folder on first use), or a URL (see [`StateLocation::parse`]).
    #[serde(default = "default_database", deserialize_with = "state_location")]
    pub database: StateLocation,
}

impl Default for StateConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [state] key has a default")
    }
}

/// `[server]`: the HTTP side (`tidings serve`, and the daemon): subscribe, confirm, unsubscribe and preferences
/// pages, the feeds, `/healthz` and `/metrics`. Links in mail point at `[newsletter] public_url` (else the site),
/// which a reverse proxy maps to `listen`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address to listen on (`TIDINGS_SERVER_LISTEN`). Loopback by default: put a reverse proxy (TLS) in front.
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// Sign-ups a client IP may make per hour (the form's abuse limit).
    #[serde(default = "default_signups_per_ip")]
    pub signups_per_hour_per_ip: u32,
    /// Sign-ups (so confirmation messages) one address may get per hour, whoever asks.
    #[serde(default = "default_signups_per_address")]
    pub signups_per_hour_per_address: u32,
    /// A header a reverse proxy sets to the client's IP (`X-Forwarded-For`, `X-Real-IP`), believed only from a
    /// loopback peer. Unset: the peer's address is the client's.
    #[serde(default)]
    pub client_ip_header: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [server] key has a default")
    }
}

/// `[schedule]`: when the daemon (`tidings run`) rebuilds the feeds, and how late a missed digest tick may still
/// go out. Each digest's own schedule is in its `[[digest]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Feed rebuilds, as cron in the site's time zone (every 15 minutes by default; a rebuild with nothing changed
    /// writes nothing).
    #[serde(default = "default_build_schedule", deserialize_with = "schedule")]
    pub build: Schedule,
    /// A digest tick missed while the daemon was down is sent at start if it is at most this old (`24h`,
    /// `90m`, `2days`); an older one is recorded as skipped and its articles go out with the next digest.
    #[serde(default = "default_catch_up", with = "humantime_serde_compat")]
    pub catch_up: std::time::Duration,
    /// Also rebuild when the article store changes on disk (a burst of saves makes one rebuild, two seconds
    /// after the last), besides the `build` schedule.
    #[serde(default)]
    pub watch: bool,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [schedule] key has a default")
    }
}

fn default_build_schedule() -> Schedule {
    Schedule::parse("*/15 * * * *").expect("a valid schedule")
}
fn default_catch_up() -> std::time::Duration {
    std::time::Duration::from_secs(24 * 3600)
}

/// `catch_up = "24h"`: a duration as people write it.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, de::Error};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            D::Error::custom(format!(
                "\"{text}\" is not a duration ({e}); write it like \"24h\", \"90m\" or \"2days\""
            ))
        })
    }
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_signups_per_ip() -> u32 {
    20
}
fn default_signups_per_address() -> u32 {
    3
}

fn default_templates() -> PathBuf {
    "templates".into()
}
fn default_subject() -> String {
    "{{site.title}}: {{count}} new {{#if one}}article{{else}}articles{{/if}}".into()
}
fn default_max_articles() -> usize {
    10
}
fn default_related() -> usize {
    2
}
fn default_outbox() -> PathBuf {
    "outbox".into()
}
fn default_sendmail() -> PathBuf {
    "/usr/sbin/sendmail".into()
}
/// Ten connections, as listmonk's default: enough to keep a relay busy (a message is several round trips),
/// few enough for any relay's limits.
fn default_concurrency() -> usize {
    10
}
fn default_timeout() -> u64 {
    30
}
fn default_max_attempts() -> u32 {
    3
}
fn default_retry_backoff_ms() -> u64 {
    2000
}
fn default_bounce_threshold() -> usize {
    3
}
fn default_database() -> StateLocation {
    StateLocation::Sqlite("data/tidings.db".into())
}

// Values with a shape of their own, parsed once here; the message names the fix (the key is added by the caller).

fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(|_| {
        D::Error::custom(format!(
            "\"{name}\" is not a time zone; use an IANA name like \"Europe/Berlin\" or \"UTC\""
        ))
    })
}

fn schedule<'de, D: Deserializer<'de>>(d: D) -> Result<Schedule, D::Error> {
    Schedule::parse(&String::deserialize(d)?).map_err(D::Error::custom)
}

fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mailbox>, D::Error> {
    let value = String::deserialize(d)?;
    value.parse().map(Some).map_err(|_| {
        D::Error::custom(format!(
            "\"{value}\" is not a mailbox; use \"Name <news@example.com>\" or \"news@example.com\""
        ))
    })
}

fn state_location<'de, D: Deserializer<'de>>(d: D) -> Result<StateLocation, D::Error> {
    StateLocation::parse(&String::deserialize(d)?).map_err(D::Error::custom)
}

/// The shape RFC 4287's `xml:lang` and RSS's `<language>` accept: `[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*`.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let part_ok = |p: &str, alpha: bool| {
        (1..=8).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_alphabetic() || (!alpha && b.is_ascii_digit()))
    };
    parts.next().is_some_and(|first| part_ok(first, true)) && parts.all(|p| part_ok(p, false))
}

fn default_language() -> String {
    "en".into()
}
fn default_timezone() -> Tz {
    Tz::UTC
}
fn default_articles() -> PathBuf {
    "data/articles".into()
}
fn default_permalink() -> String {
    "/posts/{slug}/".into()
}
fn default_wpm() -> u32 {
    230
}
fn default_max_article_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_output() -> PathBuf {
    "public".into()
}
fn default_limit() -> usize {
    20
}
fn default_true() -> bool {
    true
}
fn default_formats() -> Vec<FeedFormat> {
    vec![FeedFormat::Rss, FeedFormat::Atom, FeedFormat::Json]
}

/// `[related]`: related reading (see the `related` module for how the score is made).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelatedConfig {
    /// Related articles per article, editor's picks included.
    #[serde(default = "default_related_count")]
    pub count: usize,
    /// Weight of text similarity (TF-IDF cosine over title, summary and body) in the blended score.
    #[serde(default = "default_text_weight")]
    pub text_weight: f64,
    /// Weight of shared tags (cosine of IDF-weighted tag sets).
    #[serde(default = "default_tags_weight")]
    pub tags_weight: f64,
    /// Weight of a shared category.
    #[serde(default = "default_category_weight")]
    pub category_weight: f64,
    /// How many times a word in the title counts, against once in the summary or body.
    #[serde(default = "default_title_boost")]
    pub title_boost: f64,
    /// Blended scores run from 0 to 1; below this nothing is suggested, so an article with no real neighbour
    /// gets a short (or empty) list instead of noise.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
}

impl Default for RelatedConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [related] key has a default")
    }
}

impl RelatedConfig {
    /// Problems as (key, message).
    fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.count == 0 {
            problems.push(("related.count".into(), "must be at least 1".into()));
        }
        for (key, value) in [
            ("related.text_weight", self.text_weight),
            ("related.tags_weight", self.tags_weight),
            ("related.category_weight", self.category_weight),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                problems.push((key.into(), format!("{value} must be a number >= 0")));
            }
        }
        // NaN weights are reported above; here only "all zero" is left to catch.
        if self.text_weight + self.tags_weight + self.category_weight <= 0.0 {
            problems.push((
                "related.text_weight".into(),
                "text, tags and category weights are all 0; give one of them a weight".into(),
            ));
        }
        if !(self.title_boost.is_finite() && self.title_boost >= 0.0) {
            problems.push(("related.title_boost".into(), "must be a number >= 0".into()));
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            problems.push(("related.min_score".into(), "must be between 0 and 1".into()));
        }
        problems
    }
}

fn default_related_count() -> usize {
    3
}
fn default_text_weight() -> f64 {
    1.0
}
fn default_tags_weight() -> f64 {
    0.5
}
fn default_category_weight() -> f64 {
    0.1
}
fn default_title_boost() -> f64 {
    3.0
}
fn default_min_score() -> f64 {
    0.1
}

/// Sections whose keys may be overridden from the environment, longest first so `mail.dkim` wins over `mail`.
const ENV_SECTIONS: &[&str] = &[
    "mail.dkim",
    "site",
    "feeds",
    "related",
    "newsletter",
    "mail",
    "state",
    "server",
    "schedule",
];

/// Environment variables that are not config keys (secrets, the config path and the log filter).
const ENV_NOT_KEYS: &[&str] = &[
    "TIDINGS_CONFIG",
    "TIDINGS_SECRET",
    "TIDINGS_MAIL_PASSWORD",
    "TIDINGS_LOG",
];

impl Config {
    /// Reads `path`, applies the process environment's overrides and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => ConfigError::Missing {
                path: path.to_owned(),
            },
            _ => ConfigError::Read {
                path: path.to_owned(),
                error,
            },
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(path, &text, std::env::vars(), base)
    }

    /// Parses config text, applies `TIDINGS_*` overrides from `env`, resolves paths against `base` and validates.
    pub fn parse(
        origin: &Path,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
        base: &Path,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| syntax_error(origin, text, &e))?;
        let overridden = apply_env_overrides(&mut table, env)?;
        // A templates folder named in the file or the environment must exist; the default one is optional.
        let templates_named = table
            .get("newsletter")
            .and_then(|n| n.get("templates"))
            .is_some();
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| invalid_value(origin, &overridden, e))?;
        config.resolve_paths(base);
        config.validate(origin, templates_named)?;
        let (found, name_dates, file) = Generator::detect(&config.site.articles, origin);
        if config.site.generator == Generator::Auto {
            config.site.generator = found;
        }
        config.site.hugo_name_dates = config.site.generator == Generator::Hugo && name_dates;
        if config.site.generator == Generator::Jekyll
            && let Some(file) = file
        {
            config.site.jekyll_config = std::sync::Arc::new(jekyll_site_values(&file));
        }
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.site.articles);
        resolve(&mut self.feeds.output);
        resolve(&mut self.newsletter.templates);
        resolve(&mut self.mail.outbox);
        // A bare program name is looked up on PATH; only a relative path with a folder is the config's.
        if self.mail.sendmail_command.components().count() > 1 {
            resolve(&mut self.mail.sendmail_command);
        }
        if let StateLocation::Sqlite(path) = &mut self.state.database {
            resolve(path);
        }
        if let Some(dkim) = &mut self.mail.dkim {
            resolve(&mut dkim.key_file);
        }
    }

    fn validate(&mut self, origin: &Path, templates_named: bool) -> Result<(), ConfigError> {
        let origin = origin.display().to_string();
        let mut errors = Vec::new();
        let mut invalid = |key: &str, message: String| {
            errors.push(ConfigError::Invalid {
                origin: origin.clone(),
                key: key.into(),
                message,
            })
        };
        if !matches!(self.site.base_url.scheme(), "http" | "https") {
            invalid(
                "site.base_url",
                "must be an http or https URL, like \"https://example.com/\"".into(),
            );
        }
        if !self.site.base_url.path().ends_with('/') {
            let path = format!("{}/", self.site.base_url.path());
            self.site.base_url.set_path(&path);
        }
        // `en_US` (a locale, as Jekyll sites write it) is the language tag `en-US`: feeds and `xml:lang` take
        // only the tag.
        self.site.language = self.site.language.trim().replace('_', "-");
        if !is_language_tag(&self.site.language) {
            invalid(
                "site.language",
                "must be a language tag like \"en\" or \"pt-BR\"".into(),
            );
        }
        if self.site.title.trim().is_empty() {
            invalid("site.title", "must not be empty".into());
        }
        if !["{slug}", "{slug_or_title}", "{title}"]
            .iter()
            .any(|p| self.site.permalink.contains(p))
        {
            invalid(
                "site.permalink",
                "must contain {slug} (or {slug_or_title} or {title}), like \"/posts/{slug}/\""
                    .into(),
            );
        }
        if self.site.reading_wpm == 0 {
            invalid("site.reading_wpm", "must be at least 1".into());
        }
        if self.feeds.limit == 0 {
            invalid(
                "feeds.limit",
                "must be at least 1 (a feed with no items helps no reader)".into(),
            );
        }
        for (key, message) in self.newsletter_problems() {
            invalid(&key, message);
        }
        if templates_named && !self.newsletter.templates.is_dir() {
            invalid(
                "newsletter.templates",
                format!(
                    "\"{}\" is not a folder; create it, or remove the key to use the built-in templates",
                    self.newsletter.templates.display()
                ),
            );
        }
        if let Some(key) = &self.site.default_author
            && !self.authors.contains_key(key)
        {
            invalid(
                "site.default_author",
                format!("\"{key}\" is not a key of [authors]"),
            );
        }
        for (key, author) in &self.authors {
            // Feeds carry these as they are (Atom `<email>`, `<uri>`); a bad one breaks the feed or runs as script.
            if let Some(Err(m)) = author
                .email
                .as_deref()
                .map(crate::store::check_author_email)
            {
                invalid(&format!("authors.{key}.email"), m);
            }
            if let Some(Err(m)) = author.url.as_deref().map(crate::store::check_author_url) {
                invalid(&format!("authors.{key}.url"), m);
            }
        }
        for (key, message) in self.related.problems() {
            invalid(&key, message);
        }
        for (key, value) in [
            (
                "server.signups_per_hour_per_ip",
                self.server.signups_per_hour_per_ip,
            ),
            (
                "server.signups_per_hour_per_address",
                self.server.signups_per_hour_per_address,
            ),
        ] {
            if value == 0 {
                invalid(
                    key,
                    "must be at least 1 (0 would refuse every sign-up)".into(),
                );
            }
        }
        if let Some(header) = &self.server.client_ip_header
            && axum::http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            invalid(
                "server.client_ip_header",
                format!("\"{header}\" is not a header name; use one like \"X-Forwarded-For\""),
            );
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Many(errors)),
        }
    }

    /// `[newsletter]`, `[[digest]]` and `[mail]` problems as (key, message).
    fn newsletter_problems(&mut self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, digest) in self.digest.iter().enumerate() {
            let key = |k: &str| format!("digest[{i}].{k}");
            let valid_name = !digest.name.is_empty()
                && digest
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !valid_name {
                problems.push((
                    key("name"),
                    format!(
                        "\"{}\" is not a digest name; use lowercase letters, digits, - and _",
                        digest.name
                    ),
                ));
            } else if !seen.insert(digest.name.clone()) {
                problems.push((key("name"), format!("\"{}\" is defined twice", digest.name)));
            }
            if digest.max_articles == 0 {
                problems.push((key("max_articles"), "must be at least 1".into()));
            }
            // "0 8 30 2 *" (February 30th) parses but never fires: its digest would never be sent.
            let epoch = chrono::DateTime::UNIX_EPOCH.fixed_offset();
            if digest
                .schedule
                .next_after(epoch, self.site.timezone)
                .is_none()
            {
                problems.push((
                    key("schedule"),
                    format!(
                        "\"{}\" never fires (no such date); check the day and month fields",
                        digest.schedule.as_str()
                    ),
                ));
            }
        }
        if let Some(url) = &mut self.newsletter.public_url {
            if !matches!(url.scheme(), "http" | "https") {
                problems.push((
                    "newsletter.public_url".into(),
                    "must be an http or https URL, like \"https://example.com/newsletter/\"".into(),
                ));
            }
            if !url.path().ends_with('/') {
                let path = format!("{}/", url.path());
                url.set_path(&path);
            }
        }
        if !self.digest.is_empty() {
            if self.newsletter.from.is_none() {
                problems.push((
                    "newsletter.from".into(),
                    "is required when a [[digest]] is defined; set it like \"Blog <news@example.com>\"".into(),
                ));
            }
            if self.newsletter.postal_address.trim().is_empty() {
                problems.push((
                    "newsletter.postal_address".into(),
                    "is required when a [[digest]] is defined (digest footers carry it)".into(),
                ));
            }
        }
        problems.extend(self.mail_problems());
        if let Some(dkim) = &self.mail.dkim
            && (dkim.selector.trim().is_empty() || dkim.domain.trim().is_empty())
        {
            problems.push((
                "mail.dkim".into(),
                "selector and domain must not be empty".into(),
            ));
        }
        problems
    }

    /// `[mail]` problems as (key, message).
    fn mail_problems(&self) -> Vec<(String, String)> {
        let mail = &self.mail;
        let mut problems = Vec::new();
        match (&mail.smtp_url, mail.transport) {
            (None, MailTransport::Smtp) => problems.push((
                "mail.smtp_url".into(),
                "is required with transport = \"smtp\"; set it like \"smtps://user@smtp.example.com:465\"".into(),
            )),
            (Some(url), _) => {
                if let Err(e) = crate::mail::SmtpSettings::check_url(url, mail.allow_plaintext) {
                    problems.push(("mail.smtp_url".into(), e));
                }
            }
            (None, _) => {}
        }
        for (key, value, least) in [
            ("mail.concurrency", mail.concurrency as u64, 1),
            ("mail.max_attempts", u64::from(mail.max_attempts), 1),
            ("mail.bounce_threshold", mail.bounce_threshold as u64, 1),
            ("mail.timeout_seconds", mail.timeout_seconds, 1),
        ] {
            if value < least {
                problems.push((key.into(), format!("must be at least {least}")));
            }
        }
        if let Some(rate) = mail.rate_per_second
            && !(rate.is_finite() && rate > 0.0)
        {
            problems.push((
                "mail.rate_per_second".into(),
                "must be a number above 0 (remove it for no limit)".into(),
            ));
        }
        problems
    }

    /// The `[[digest]]` named `name`.
    pub fn digest(&self, name: &str) -> Option<&DigestConfig> {
        self.digest.iter().find(|d| d.name == name)
    }

    /// Where subscribe / unsubscribe pages live: `[newsletter] public_url`, else the site.
    pub fn public_url(&self) -> &Url {
        self.newsletter
            .public_url
            .as_ref()
            .unwrap_or(&self.site.base_url)
    }

    /// The site's time zone.
    pub fn timezone(&self) -> Tz {
        self.site.timezone
    }
}

/// Applies `TIDINGS_<SECTION>_<KEY>=value` to the table. Values are read as TOML when they parse as one
/// (`50`, `true`, `["rss", "atom"]`), otherwise as a string, so `TIDINGS_SITE_TITLE=My blog` needs no quotes.
/// Returns which variable set each overridden key (`feeds.limit` → `TIDINGS_FEEDS_LIMIT`), so an invalid value
/// is reported against the variable and not the file.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut overridden = BTreeMap::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("TIDINGS_") && !ENV_NOT_KEYS.contains(&k.as_str()))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let rest = var["TIDINGS_".len()..].to_ascii_lowercase();
        let Some((section, key)) = ENV_SECTIONS.iter().find_map(|section| {
            let prefix = format!("{}_", section.replace('.', "_"));
            rest.strip_prefix(&prefix)
                .map(|key| (*section, key.to_string()))
        }) else {
            return Err(ConfigError::Invalid {
                origin: "environment".into(),
                key: var.clone(),
                message: format!(
                    "unknown section; use TIDINGS_<SECTION>_<KEY> with a section of {}",
                    ENV_SECTIONS.join(", ")
                ),
            });
        };
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut node = &mut *table;
        for part in section.split('.') {
            node = node
                .entry(part)
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Invalid {
                    origin: "environment".into(),
                    key: var.clone(),
                    message: format!("[{section}] in the config file is not a table"),
                })?;
        }
        overridden.insert(format!("{section}.{key}"), var);
        node.insert(key, value);
    }
    Ok(overridden)
}

/// A value serde refused, located by its key path (`digest[1].schedule`) and attributed to the environment variable that set it, if one did.
fn invalid_value(
    origin: &Path,
    overridden: &BTreeMap<String, String>,
    e: serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    // The path ends with the offending key, an unknown one included (`feed` for a misspelled `[feed]`).
    let key = match e.path().to_string() {
        root if root == "." => String::new(),
        path => path,
    };
    let message = e.into_inner().message().trim().to_string();
    let from_env = overridden
        .iter()
        .find(|(k, _)| **k == key || k.starts_with(&format!("{key}.")))
        .map(|(_, var)| var);
    ConfigError::Invalid {
        origin: match from_env {
            Some(var) => format!("environment variable {var}"),
            None => origin.display().to_string(),
        },
        key,
        message,
    }
}

fn syntax_error(origin: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
    ConfigError::Syntax {
        path: origin.to_owned(),
        line,
        col,
        message: e.message().to_string(),
    }
}

/// 1-based line and column of a byte offset (TOML and YAML spans are byte offsets).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[site]\ntitle = \"Blog\"\nbase_url = \"https://example.com\"\n";

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::parse(Path::new("config.toml"), text, env, Path::new("/srv/blog"))
    }

    #[test]
    fn the_generator_is_found_by_its_config_beside_the_store_but_never_by_tidings_own() {
        let site = tempfile::tempdir().unwrap();
        let store = site.path().join("content/posts");
        std::fs::create_dir_all(&store).unwrap();
        let own = site.path().join("config.toml");
        std::fs::write(&own, "[site]\nbase_url = \"https://example.com/\"\n").unwrap();
        assert_eq!(
            Generator::detect(&store, &own),
            (Generator::Auto, false, None)
        );

        let zola = site.path().join("elsewhere.toml");
        std::fs::write(&own, "base_url = \"https://example.com/\"\n").unwrap();
        assert_eq!(
            Generator::detect(&store, &zola),
            (Generator::Zola, false, None)
        );

        std::fs::write(&own, "baseURL = \"https://example.com/\"\n").unwrap();
        assert_eq!(
            Generator::detect(&store, &zola),
            (Generator::Hugo, false, None)
        );

        std::fs::remove_file(&own).unwrap();
        std::fs::write(
            site.path().join("hugo.toml"),
            "[frontmatter]\ndate = [\":filename\", \":default\"]\n",
        )
        .unwrap();
        assert_eq!(
            Generator::detect(&store, &zola),
            (Generator::Hugo, true, None)
        );

        let jekyll = tempfile::tempdir().unwrap();
        std::fs::create_dir(jekyll.path().join("_posts")).unwrap();
        std::fs::write(jekyll.path().join("_config.yml"), "title: x\n").unwrap();
        assert_eq!(
            Generator::detect(&jekyll.path().join("_posts"), &zola),
            (
                Generator::Jekyll,
                false,
                Some(jekyll.path().join("_config.yml"))
            )
        );

        let text = format!(
            "{MINIMAL}articles = \"{}\"\ngenerator = \"zola\"\n",
            jekyll.path().join("_posts").display()
        );
        let config = parse(&text, &[]).unwrap();
        assert_eq!(config.site.generator, Generator::Zola, "as written wins");
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let config = parse(MINIMAL, &[]).unwrap();
        assert_eq!(config.feeds.limit, 20);
        assert!(config.feeds.full_content);
        assert_eq!(config.site.base_url.as_str(), "https://example.com/");
        assert_eq!(config.site.articles, Path::new("/srv/blog/data/articles"));
        assert_eq!(
            config.feeds.formats,
            vec![FeedFormat::Rss, FeedFormat::Atom, FeedFormat::Json]
        );
    }

    #[test]
    fn environment_overrides_keys_with_typed_values() {
        let config = parse(
            MINIMAL,
            &[
                ("TIDINGS_FEEDS_LIMIT", "50"),
                ("TIDINGS_SITE_ARTICLES", "/content"),
                ("TIDINGS_SITE_TITLE", "My blog: notes"),
                ("TIDINGS_SECRET", "not a key"),
            ],
        )
        .unwrap();
        assert_eq!(config.feeds.limit, 50);
        assert_eq!(config.site.articles, Path::new("/content"));
        assert_eq!(config.site.title, "My blog: notes");
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let err = parse("[site]\ntitle = \"Blog\"\nbase_url = https://x\n", &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("config.toml:3:"), "{text}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = parse(&format!("{MINIMAL}[feeds]\nlimit = \"many\"\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("feeds.limit"), "{err}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = parse(&format!("{MINIMAL}[feeds]\nlimt = 3\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("limt"), "{err}");
    }

    #[test]
    fn a_locale_is_taken_as_its_language_tag_and_anything_else_refused() {
        let config = parse(&format!("{MINIMAL}language = \"en_US\"\n"), &[]).unwrap();
        assert_eq!(config.site.language, "en-US");
        for bad in ["", "english (US)", "en--US", "toolonglanguage"] {
            let err = parse(&format!("{MINIMAL}language = \"{bad}\"\n"), &[]).unwrap_err();
            assert!(err.to_string().contains("site.language"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let err = parse(
            "[site]\ntitle = \"\"\nbase_url = \"ftp://x/\"\nreading_wpm = 0\n",
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        for key in ["site.title", "site.base_url", "site.reading_wpm"] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
    }

    #[test]
    fn values_with_a_shape_are_parsed_once_into_their_types() {
        let text = format!(
            "{MINIMAL}timezone = \"Europe/Berlin\"\n[newsletter]\nfrom = \"Blog <news@example.com>\"\n\
             postal_address = \"1 Street\"\n[state]\ndatabase = \"sqlite:state/t.db\"\n{DIGEST}"
        );
        let config = parse(&text, &[]).unwrap();
        assert_eq!(config.timezone(), chrono_tz::Europe::Berlin);
        let from = config.newsletter.from.as_ref().unwrap();
        assert_eq!(
            (from.name.as_deref(), from.email.to_string().as_str()),
            (Some("Blog"), "news@example.com")
        );
        assert_eq!(
            config.digest("weekly").unwrap().schedule.as_str(),
            "0 8 * * MON"
        );
        assert_eq!(
            config.state.database,
            StateLocation::Sqlite("/srv/blog/state/t.db".into())
        );
    }

    #[test]
    fn a_bad_time_zone_names_its_key_and_the_fix() {
        let err = parse(&format!("{MINIMAL}timezone = \"Mars/Olympus\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "config.toml: error: site.timezone: \"Mars/Olympus\" is not a time zone"
            ),
            "{err}"
        );
        assert!(err.contains("Europe/Berlin"), "{err}");
    }

    #[test]
    fn a_misspelled_section_is_reported_as_that_section() {
        let err = parse(&format!("{MINIMAL}{DIGEST}[feed]\nlimit = 3\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("error: feed: unknown field `feed`"), "{err}");
        assert!(
            !err.contains("digest["),
            "not blamed on the section before it: {err}"
        );
    }

    #[test]
    fn an_invalid_override_names_the_variable_not_the_file() {
        let err = parse(MINIMAL, &[("TIDINGS_FEEDS_LIMIT", "many")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("environment variable TIDINGS_FEEDS_LIMIT: error: feeds.limit:"),
            "{err}"
        );
        let err = parse(MINIMAL, &[("TIDINGS_FEEDS_PER_TAGS", "true")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("environment variable TIDINGS_FEEDS_PER_TAGS: error: feeds.per_tags:"),
            "{err}"
        );
    }

    #[test]
    fn the_log_filter_and_secrets_are_not_config_keys() {
        let config = parse(
            MINIMAL,
            &[
                ("TIDINGS_LOG", "debug"),
                ("TIDINGS_SECRET", "s"),
                ("TIDINGS_MAIL_PASSWORD", "p"),
                ("TIDINGS_CONFIG", "/x.toml"),
            ],
        );
        assert!(config.is_ok(), "{:?}", config.err());
    }

    #[test]
    fn an_unknown_server_key_from_the_environment_names_the_variable_and_the_keys() {
        let err = parse(MINIMAL, &[("TIDINGS_SERVER_PORT", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("environment variable TIDINGS_SERVER_PORT")
                && err.contains("unknown field `port`")
                && err.contains("`listen`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_env_section_is_an_error() {
        let err = parse(MINIMAL, &[("TIDINGS_NOPE_X", "1")]).unwrap_err();
        assert!(err.to_string().contains("TIDINGS_NOPE_X"), "{err}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }

    const DIGEST: &str = "[[digest]]\nname = \"weekly\"\nschedule = \"0 8 * * MON\"\n";

    #[test]
    fn a_digest_gets_defaults_and_paths_resolve_against_the_config_folder() {
        let text = format!(
            "{MINIMAL}[newsletter]\nfrom = \"Blog <news@example.com>\"\npostal_address = \"1 Street\"\n{DIGEST}"
        );
        let config = parse(&text, &[]).unwrap();
        let digest = config.digest("weekly").unwrap();
        assert_eq!((digest.max_articles, digest.related), (10, 2));
        assert_eq!(
            config.state.database,
            StateLocation::Sqlite("/srv/blog/data/tidings.db".into())
        );
        assert_eq!(config.mail.outbox, Path::new("/srv/blog/outbox"));
        assert_eq!(config.mail.transport, MailTransport::File);
        assert_eq!(config.public_url().as_str(), "https://example.com/");
    }

    #[test]
    fn digest_problems_name_their_keys() {
        let text = format!(
            "{MINIMAL}{DIGEST}[[digest]]\nname = \"Weekly Digest\"\nschedule = \"0 9 * * *\"\nmax_articles = 0\n"
        );
        let text = parse(&text, &[]).unwrap_err().to_string();
        for key in [
            "newsletter.from",
            "newsletter.postal_address",
            "digest[1].name",
            "digest[1].max_articles",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
    }

    #[test]
    fn a_bad_schedule_names_its_digest() {
        let text =
            format!("{MINIMAL}{DIGEST}[[digest]]\nname = \"daily\"\nschedule = \"every monday\"\n");
        let err = parse(&text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("error: digest[1].schedule: \"every monday\" is not a cron schedule"),
            "{err}"
        );
    }

    #[test]
    fn an_author_url_that_is_not_http_is_rejected() {
        let text = format!(
            "{MINIMAL}[authors.eve]\nname = \"Eve\"\nurl = \"javascript:alert(1)\"\nemail = \"eve\\u0000@example.com\"\n"
        );
        let err = parse(&text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("authors.eve.url: \"javascript:alert(1)\" is not an http(s) URL"),
            "{err}"
        );
        assert!(err.contains("authors.eve.email:"), "{err}");
    }

    #[test]
    fn a_missing_config_file_says_so_once_and_suggests_config() {
        let err = Config::load(Path::new("/nonexistent/tidings.toml")).unwrap_err();
        let text = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(text.matches("no such").count(), 1, "{text}");
        assert!(text.contains("pass --config PATH"), "{text}");
    }

    #[test]
    fn a_templates_folder_that_does_not_exist_is_an_error_only_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let parse_in =
            |text: &str| Config::parse(Path::new("config.toml"), text, Vec::new(), dir.path());
        assert!(parse_in(MINIMAL).is_ok(), "the default folder is optional");
        let err = parse_in(&format!("{MINIMAL}[newsletter]\ntemplates = \"tmpl\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("error: newsletter.templates: \"")
                && err.contains("tmpl\" is not a folder"),
            "{err}"
        );
        std::fs::create_dir(dir.path().join("tmpl")).unwrap();
        assert!(parse_in(&format!("{MINIMAL}[newsletter]\ntemplates = \"tmpl\"\n")).is_ok());
    }

    #[test]
    fn a_schedule_that_never_fires_is_an_error() {
        let text = format!(
            "{MINIMAL}[newsletter]\nfrom = \"Blog <news@example.com>\"\npostal_address = \"1 Street\"\n\
             [[digest]]\nname = \"never\"\nschedule = \"0 8 30 2 *\"\n"
        );
        let err = parse(&text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("error: digest[0].schedule: \"0 8 30 2 *\" never fires"),
            "{err}"
        );
    }

    #[test]
    fn a_sender_that_is_not_a_mailbox_is_rejected() {
        let text = format!("{MINIMAL}[newsletter]\nfrom = \"news at example\"\n");
        let err = parse(&text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("newsletter.from") && err.contains("is not a mailbox"),
            "{err}"
        );
    }

    #[test]
    fn the_server_listens_on_loopback_by_default_and_takes_its_address_from_the_environment() {
        let config = parse(MINIMAL, &[]).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.server.signups_per_hour_per_ip, 20);
        assert_eq!(config.server.client_ip_header, None);
        let config = parse(MINIMAL, &[("TIDINGS_SERVER_LISTEN", "0.0.0.0:9000")]).unwrap();
        assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
        let err = parse(MINIMAL, &[("TIDINGS_SERVER_LISTEN", "localhost")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("TIDINGS_SERVER_LISTEN") && err.contains("server.listen"),
            "{err}"
        );
    }

    #[test]
    fn server_limits_and_header_are_checked() {
        let text = format!(
            "{MINIMAL}[server]\nsignups_per_hour_per_ip = 0\nclient_ip_header = \"X Forwarded\"\n"
        );
        let err = parse(&text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("server.signups_per_hour_per_ip: must be at least 1"),
            "{err}"
        );
        assert!(err.contains("server.client_ip_header"), "{err}");
    }

    #[test]
    fn the_schedule_has_defaults_durations_as_people_write_them_and_environment_overrides() {
        let config = parse(MINIMAL, &[]).unwrap();
        assert_eq!(config.schedule.build.as_str(), "*/15 * * * *");
        assert_eq!(
            config.schedule.catch_up,
            std::time::Duration::from_secs(86_400)
        );
        let text = format!("{MINIMAL}[schedule]\nbuild = \"*/5 * * * * *\"\ncatch_up = \"90m\"\n");
        let config = parse(&text, &[("TIDINGS_SCHEDULE_CATCH_UP", "2days")]).unwrap();
        assert_eq!(config.schedule.build.as_str(), "*/5 * * * * *");
        assert_eq!(
            config.schedule.catch_up,
            std::time::Duration::from_secs(2 * 86_400)
        );
        let err = parse(&format!("{MINIMAL}[schedule]\ncatch_up = \"a day\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("schedule.catch_up") && err.contains("write it like \"24h\""),
            "{err}"
        );
    }
}
