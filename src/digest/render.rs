//! Rendering a [`DigestPlan`] into a subject, a plain-text part and an HTML part with the digest templates.
//!
//! Two Handlebars registries, both in strict mode (a misspelt variable is an error, not an empty string): one
//! HTML-escaping for the HTML part, one without escaping for text/plain and Subject (handlebars escapes `=` as
//! `&#x3D;`, which breaks URLs in plain text). The built-in templates are compiled in; a file of the same name
//! in `[newsletter] templates` overrides one. CSS is inlined into `style` attributes with `css-inline`.
//!
//! Rendering (Handlebars, then CSS inlining) is most of the cost of a message, and in one run most subscribers get
//! the same articles. So each distinct content (the articles, related picks, window and settings: the content
//! key) is rendered once with markers in place of the subscriber's own values (name, address, unsubscribe link,
//! the "why you get this" line), and each message merges its values in, as merge tags do; `wrap` on a marker
//! is remembered and applied to the value. The first message of each content is also rendered directly and must
//! come out the same; if a template makes them differ (a helper that looks at a personal value), merging is
//! switched off and every message is rendered in full. A value the context gains that differs between
//! subscribers must become a slot: the test `only_slots_differ_between_subscribers_of_one_content` says so.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use handlebars::{Handlebars, handlebars_helper};
use serde::Serialize;

use super::DigestError;
use super::plan::DigestPlan;
use crate::config::DigestConfig;
use crate::store::Article;

/// Gmail clips an HTML part larger than about 102 KB behind a "view entire message" link.
pub const GMAIL_CLIP_BYTES: usize = 102 * 1024;

/// The built-in templates, by path under `templates/`.
const BUILTIN: &[(&str, &str)] = &[
    (
        "digest.html.hbs",
        include_str!("../../templates/digest.html.hbs"),
    ),
    (
        "digest.txt.hbs",
        include_str!("../../templates/digest.txt.hbs"),
    ),
    (
        "partials/article.html.hbs",
        include_str!("../../templates/partials/article.html.hbs"),
    ),
    (
        "partials/related.html.hbs",
        include_str!("../../templates/partials/related.html.hbs"),
    ),
    (
        "partials/footer.html.hbs",
        include_str!("../../templates/partials/footer.html.hbs"),
    ),
    (
        "partials/article.txt.hbs",
        include_str!("../../templates/partials/article.txt.hbs"),
    ),
    (
        "partials/footer.txt.hbs",
        include_str!("../../templates/partials/footer.txt.hbs"),
    ),
];

/// The subject, text and HTML of one digest message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedDigest {
    /// Free of CR, LF and other control characters.
    pub subject: String,
    pub text: Part,
    /// With CSS inlined.
    pub html: Part,
}

/// The text or HTML part of one message: rendered for it alone, or a part shared by every message of the same
/// content with this subscriber's values in its slots (so that what is done to the shared text, such as a
/// transfer encoding, can be done once: [`Part::encoded`]).
#[derive(Debug, Clone)]
pub struct Part(PartKind);

#[derive(Debug, Clone)]
enum PartKind {
    Whole(String),
    Merged {
        shared: Arc<SharedText>,
        personal: Arc<Personal>,
    },
}

/// A part's text with slots, and its fixed pieces once encoded.
#[derive(Debug)]
struct SharedText {
    merge: Merge,
    /// HTML: values are escaped.
    escape: bool,
    encoded: OnceLock<Vec<String>>,
}

impl Part {
    pub fn whole(text: String) -> Part {
        Part(PartKind::Whole(text))
    }

    /// The part's text.
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        match &self.0 {
            PartKind::Whole(text) => std::borrow::Cow::Borrowed(text),
            PartKind::Merged { shared, personal } => {
                std::borrow::Cow::Owned(shared.merge.merge(personal, shared.escape))
            }
        }
    }

    pub fn len(&self) -> usize {
        self.to_text().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.to_text().contains(needle)
    }

    /// The part encoded with `encode`, piece by piece: the shared pieces are encoded once (with the first
    /// `encode` given: a program uses one) and each subscriber value apart, joined by `join`, which must be
    /// nothing once decoded (a quoted-printable soft line break).
    pub fn encoded(&self, encode: impl Fn(&str) -> String, join: &str) -> String {
        let (shared, personal) = match &self.0 {
            PartKind::Whole(text) => return encode(text),
            PartKind::Merged { shared, personal } => (shared, personal),
        };
        let fixed = shared.encoded.get_or_init(|| {
            shared
                .merge
                .pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Fixed(text) => Some(encode(text)),
                    Piece::Slot { .. } => None,
                })
                .collect()
        });
        let mut fixed = fixed.iter();
        let mut out = String::new();
        for (i, piece) in shared.merge.pieces.iter().enumerate() {
            if i > 0 {
                out.push_str(join);
            }
            match piece {
                Piece::Fixed(_) => {
                    out.push_str(fixed.next().expect("one encoding per fixed piece"))
                }
                Piece::Slot { slot, width } => {
                    let mut value = String::new();
                    Merge::push_value(&mut value, personal, *slot, *width, shared.escape);
                    out.push_str(&encode(&value));
                }
            }
        }
        out
    }
}

impl PartialEq for Part {
    fn eq(&self, other: &Part) -> bool {
        self.to_text() == other.to_text()
    }
}

impl Eq for Part {}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// The compiled templates and where each came from (for error messages).
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    origins: BTreeMap<String, String>,
    /// Digests with markers for the subscriber's own values, by the content they were made from.
    merged: Mutex<HashMap<u64, Arc<SharedDigest>>>,
    /// Off once a template made a merged part differ from a full render.
    merging: AtomicBool,
}

/// Contents kept at once (a run rarely has more than a few: subscribers who joined or filter alike share one).
const MERGED_KEPT: usize = 4096;

/// A marker opens and closes with private-use characters, which neither templates nor escaping produce.
const MARK_OPEN: char = '\u{F8F0}';
const MARK_CLOSE: char = '\u{F8F1}';

/// The subscriber's own values in a render context: everything in it that differs between two subscribers who get
/// the same articles. A shared digest has markers in their places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Name,
    Email,
    Unsubscribe,
    /// Why they get the digest: their address, the day they subscribed, their categories.
    Reason,
}

impl Slot {
    const ALL: [Slot; 4] = [Slot::Name, Slot::Email, Slot::Unsubscribe, Slot::Reason];

    fn word(self) -> &'static str {
        match self {
            Slot::Name => "name",
            Slot::Email => "email",
            Slot::Unsubscribe => "unsubscribe",
            Slot::Reason => "reason",
        }
    }

    fn marker(self) -> String {
        format!("{MARK_OPEN}{}{MARK_CLOSE}", self.word())
    }
}

/// One subscriber's values for the slots.
#[derive(Debug)]
struct Personal {
    name: String,
    email: String,
    unsubscribe: String,
    reason: String,
}

impl Personal {
    fn of(context: &Context) -> Personal {
        Personal {
            name: context.subscriber.name.clone(),
            email: context.subscriber.email.clone(),
            unsubscribe: context.links.unsubscribe.clone(),
            reason: context.reason.clone(),
        }
    }

    fn value(&self, slot: Slot) -> &str {
        match slot {
            Slot::Name => &self.name,
            Slot::Email => &self.email,
            Slot::Unsubscribe => &self.unsubscribe,
            Slot::Reason => &self.reason,
        }
    }

    /// Whether merging these values gives what a full render gives (see [`escape_merged`]).
    fn mergeable(&self) -> bool {
        Slot::ALL.iter().all(|s| {
            let v = self.value(*s);
            !v.contains(['<', '>', '"', '\u{a0}', MARK_OPEN, MARK_CLOSE])
        })
    }

    /// Puts markers in `context` in place of these values. An empty name stays empty (a template may test it),
    /// so whether there is one is part of the content key.
    fn mark(&self, context: &mut Context) {
        if !self.name.is_empty() {
            context.subscriber.name = Slot::Name.marker();
        }
        context.subscriber.email = Slot::Email.marker();
        context.links.unsubscribe = Slot::Unsubscribe.marker();
        context.reason = Slot::Reason.marker();
    }
}

/// What decides a digest's shared parts: everything the render context holds besides the subscriber's own values
/// (the plan's articles, picks, window and left-out count, and the settings other than the subscriber's link).
fn content_key(plan: &DigestPlan<'_>, settings: &RenderSettings<'_>) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for a in &plan.articles {
        a.slug.hash(&mut h);
    }
    0xffu8.hash(&mut h);
    for pick in &plan.related {
        (&pick.article.slug, &pick.because.slug).hash(&mut h);
    }
    (
        plan.over_limit,
        plan.window.after,
        plan.subscriber.name.is_empty(),
    )
        .hash(&mut h);
    let RenderSettings {
        site_title,
        site_url,
        language,
        digest,
        timezone,
        unsubscribe_url: _,
        postal_address,
    } = settings;
    (
        site_title,
        site_url,
        language,
        digest,
        timezone.name(),
        postal_address,
    )
        .hash(&mut h);
    h.finish()
}

/// One rendered text with markers, cut into fixed text and slots (each with the width `wrap` gave it, if any).
#[derive(Debug)]
struct Merge {
    pieces: Vec<Piece>,
}

#[derive(Debug)]
enum Piece {
    Fixed(String),
    Slot { slot: Slot, width: Option<usize> },
}

impl Merge {
    /// `None` when a marker is broken (a template cut or changed one).
    fn parse(text: &str) -> Option<Merge> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(MARK_OPEN) {
            if open > 0 {
                pieces.push(Piece::Fixed(rest[..open].to_string()));
            }
            let after = &rest[open + MARK_OPEN.len_utf8()..];
            let close = after.find(MARK_CLOSE)?;
            let (word, width) = match after[..close].split_once(":wrap") {
                Some((word, width)) => (word, Some(width.parse().ok()?)),
                None => (&after[..close], None),
            };
            let slot = *Slot::ALL.iter().find(|s| s.word() == word)?;
            pieces.push(Piece::Slot { slot, width });
            rest = &after[close + MARK_CLOSE.len_utf8()..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Fixed(rest.to_string()));
        }
        Some(Merge { pieces })
    }

    fn merge(&self, personal: &Personal, escape: bool) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Fixed(text) => out.push_str(text),
                Piece::Slot { slot, width } => {
                    Merge::push_value(&mut out, personal, *slot, *width, escape)
                }
            }
        }
        out
    }

    /// A slot's value as the part shows it: wrapped if the template wrapped it, escaped in HTML.
    fn push_value(
        out: &mut String,
        personal: &Personal,
        slot: Slot,
        width: Option<usize>,
        escape: bool,
    ) {
        let value = personal.value(slot);
        let value = match width {
            Some(width) => std::borrow::Cow::Owned(wrap_text(value, width)),
            None => std::borrow::Cow::Borrowed(value),
        };
        if escape {
            escape_merged(&value, out);
        } else {
            out.push_str(&value);
        }
    }
}

/// A digest rendered once for everyone who gets the same content, with markers for their own values.
#[derive(Debug)]
struct SharedDigest {
    subject: Merge,
    text: Arc<SharedText>,
    html: Arc<SharedText>,
}

impl SharedDigest {
    fn parse(marked: RenderedDigest) -> Option<SharedDigest> {
        let shared = |part: &Part, escape| {
            Some(Arc::new(SharedText {
                merge: Merge::parse(&part.to_text())?,
                escape,
                encoded: OnceLock::new(),
            }))
        };
        Some(SharedDigest {
            subject: Merge::parse(&marked.subject)?,
            text: shared(&marked.text, false)?,
            html: shared(&marked.html, true)?,
        })
    }

    fn merge(&self, personal: Personal) -> RenderedDigest {
        let subject = self.subject.merge(&personal, false);
        let personal = Arc::new(personal);
        let part = |shared: &Arc<SharedText>| {
            Part(PartKind::Merged {
                shared: Arc::clone(shared),
                personal: Arc::clone(&personal),
            })
        };
        RenderedDigest {
            subject,
            text: part(&self.text),
            html: part(&self.html),
        }
    }
}

/// `value` escaped as the HTML serializer after CSS inlining writes text, and `"` too so that it is safe in an
/// attribute (the serializer leaves `"` alone in text: the same HTML, not the same bytes).
fn escape_merged(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            c => out.push(c),
        }
    }
}

/// Which registry a template file belongs to and its name there. Only `digest.*.hbs` and `partials/*.hbs` are
/// digest templates; other files in a shared templates folder (web pages, say) are not ours to compile.
fn classify(rel: &str) -> Option<(bool, String)> {
    if !(rel.starts_with("digest.") || rel.starts_with("partials/") && !rel[9..].contains('/')) {
        return None;
    }
    let (html, stem) = if let Some(stem) = rel.strip_suffix(".html.hbs") {
        (true, stem)
    } else if let Some(stem) = rel.strip_suffix(".txt.hbs") {
        (false, stem)
    } else {
        return None;
    };
    let name = stem.strip_prefix("partials/").unwrap_or(stem);
    Some((html, name.to_string()))
}

handlebars_helper!(upper: |s: str| s.to_uppercase());
handlebars_helper!(wrap: |s: str, width: u64| wrap_or_mark(s, width as usize));

/// `wrap`: a whole marker stays one, noting the width, so that the merge wraps the value it stands for.
fn wrap_or_mark(s: &str, width: usize) -> String {
    match s
        .strip_prefix(MARK_OPEN)
        .and_then(|rest| rest.strip_suffix(MARK_CLOSE))
    {
        Some(word) if !word.contains([MARK_OPEN, MARK_CLOSE, ':']) => {
            format!("{MARK_OPEN}{word}:wrap{width}{MARK_CLOSE}")
        }
        _ => wrap_text(s, width),
    }
}

/// Wraps `text` at word boundaries to lines of at most `width` characters (longer words stay whole).
pub fn wrap_text(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

fn registry(escape: bool) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.set_prevent_indent(true);
    if !escape {
        hb.register_escape_fn(handlebars::no_escape);
    }
    hb.register_helper("upper", Box::new(upper));
    hb.register_helper("wrap", Box::new(wrap));
    hb
}

/// The template files under `dir` that override a built-in one or add a partial (relative path → (origin,
/// text)), and the files that could not be read.
fn read_overrides(dir: &Path) -> (BTreeMap<String, (String, String)>, Vec<DigestError>) {
    let mut files = BTreeMap::new();
    let mut errors = Vec::new();
    if !dir.is_dir() {
        return (files, errors);
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        let Ok(rel) = entry.path().strip_prefix(dir) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if !entry.file_type().is_file() || classify(&rel).is_none() {
            continue;
        }
        match std::fs::read_to_string(entry.path()) {
            Ok(text) => {
                files.insert(rel, (entry.path().display().to_string(), text));
            }
            Err(source) => errors.push(DigestError::TemplateRead {
                path: PathBuf::from(entry.path()),
                source,
            }),
        }
    }
    (files, errors)
}

impl Templates {
    /// The built-in templates, each overridden by a file of the same path under `dir` when one exists, plus each
    /// digest's subject. Every problem is collected and reported with its file and line.
    pub fn load(dir: Option<&Path>, digests: &[DigestConfig]) -> Result<Templates, DigestError> {
        let (overrides, errors) = dir.map(read_overrides).unwrap_or_default();
        Templates::parse(overrides, errors, digests)
    }

    /// Compiles the built-in templates with `overrides` (relative path → (origin, text)) on top, plus each
    /// digest's subject; `errors` are problems found while reading, reported with the compile errors.
    pub fn parse(
        overrides: BTreeMap<String, (String, String)>,
        mut errors: Vec<DigestError>,
        digests: &[DigestConfig],
    ) -> Result<Templates, DigestError> {
        let mut sources: BTreeMap<String, (String, String)> = BUILTIN
            .iter()
            .map(|(rel, text)| {
                (
                    rel.to_string(),
                    (format!("templates/{rel} (built-in)"), text.to_string()),
                )
            })
            .collect();
        sources.extend(overrides);
        let mut templates = Templates {
            html: registry(true),
            text: registry(false),
            origins: BTreeMap::new(),
            merged: Mutex::new(HashMap::new()),
            merging: AtomicBool::new(true),
        };
        for (rel, (origin, text)) in &sources {
            let (html, name) = classify(rel).expect("only classified files are collected");
            let hb = if html {
                &mut templates.html
            } else {
                &mut templates.text
            };
            let key = if html {
                format!("{name}.html")
            } else {
                format!("{name}.txt")
            };
            let result = if rel.starts_with("partials/") {
                hb.register_partial(&name, text)
            } else {
                hb.register_template_string(&name, text)
            };
            match result {
                Ok(()) => {
                    templates.origins.insert(key, origin.clone());
                }
                Err(e) => {
                    // Reported here; it is there, so not also "missing" below.
                    templates.origins.insert(key, origin.clone());
                    errors.push(template_error(origin, &e));
                }
            }
        }
        for digest in digests {
            let name = subject_name(&digest.name);
            let origin = format!("config.toml: [[digest]] \"{}\" subject", digest.name);
            match templates
                .text
                .register_template_string(&name, &digest.subject)
            {
                Ok(()) => {
                    templates.origins.insert(format!("{name}.txt"), origin);
                }
                Err(e) => errors.push(template_error(&origin, &e)),
            }
        }
        for required in ["digest.html", "digest.txt"] {
            if !templates.origins.contains_key(required) {
                errors.push(DigestError::TemplateMissing(required.into()));
            }
        }
        match errors.len() {
            0 => Ok(templates),
            1 => Err(errors.remove(0)),
            _ => Err(DigestError::Many(errors)),
        }
    }

    /// Renders one digest. `settings` carries what the plan does not know (links, footer, time zone).
    pub fn render(
        &self,
        plan: &DigestPlan<'_>,
        settings: &RenderSettings<'_>,
    ) -> Result<RenderedDigest, DigestError> {
        let context = context(plan, settings);
        let personal = Personal::of(&context);
        // Only values escaped alike in text and in attributes (`&` is; `<`, `>` and `"` are not) can show that
        // merging gives the full render byte for byte; a message with others is rendered in full.
        if !self.merging.load(Ordering::Relaxed) || !personal.mergeable() {
            return self.render_fully(context);
        }
        let key = content_key(plan, settings);
        let known = self
            .merged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(shared) = known {
            return Ok(shared.merge(personal));
        }
        let mut marked = context.clone();
        personal.mark(&mut marked);
        let shared = SharedDigest::parse(self.render_fully(marked)?);
        let full = self.render_fully(context)?;
        match shared {
            Some(shared) if shared.merge(personal) == full => {
                let mut merged = self
                    .merged
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if merged.len() >= MERGED_KEPT {
                    merged.clear();
                }
                merged.insert(key, Arc::new(shared));
            }
            _ => {
                tracing::debug!(
                    "a template looks at personal values: rendering every message in full"
                );
                self.merging.store(false, Ordering::Relaxed);
            }
        }
        Ok(full)
    }

    /// The render context of `plan` with markers in place of the subscriber's own values (for tests that check
    /// that nothing else in it is personal).
    #[cfg(test)]
    pub(crate) fn marked_context(
        plan: &DigestPlan<'_>,
        settings: &RenderSettings<'_>,
    ) -> serde_json::Value {
        let mut marked = context(plan, settings);
        Personal::of(&marked).mark(&mut marked);
        serde_json::to_value(&marked).expect("a render context serializes")
    }

    #[cfg(test)]
    pub(crate) fn merged_len(&self) -> usize {
        self.merged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Subject, text and HTML straight from the templates.
    fn render_fully(&self, mut context: Context) -> Result<RenderedDigest, DigestError> {
        let subject = self
            .text
            .render(&subject_name(&context.digest), &context)
            .map_err(|e| {
                self.render_error(&format!("{}.txt", subject_name(&context.digest)), &e)
            })?;
        let subject = crate::store::single_line(&subject);
        context.subject = subject.clone();
        let text = self
            .text
            .render("digest", &context)
            .map_err(|e| self.render_error("digest.txt", &e))?;
        let html = self.render_html_fully(&context)?;
        Ok(RenderedDigest {
            subject,
            text: Part::whole(tidy_text(&text)),
            html: Part::whole(html),
        })
    }

    fn render_html_fully(&self, context: &Context) -> Result<String, DigestError> {
        let html = self
            .html
            .render("digest", context)
            .map_err(|e| self.render_error("digest.html", &e))?;
        let inliner = css_inline::CSSInliner::options()
            .load_remote_stylesheets(false)
            .build();
        inliner
            .inline(&html)
            .map_err(|e| DigestError::Inline(e.to_string()))
    }

    fn render_error(&self, fallback: &str, e: &handlebars::RenderError) -> DigestError {
        let origin = e
            .template_name
            .as_ref()
            .and_then(|name| {
                let ext = fallback.rsplit('.').next().unwrap_or("txt");
                self.origins.get(&format!("{name}.{ext}"))
            })
            .or_else(|| self.origins.get(fallback))
            .cloned()
            .unwrap_or_else(|| fallback.to_string());
        DigestError::Template {
            origin,
            line: e.line_no.unwrap_or(1),
            col: e.column_no.unwrap_or(1),
            message: e.reason().to_string(),
        }
    }
}

fn subject_name(digest: &str) -> String {
    format!("subject:{digest}")
}

fn template_error(origin: &str, e: &handlebars::TemplateError) -> DigestError {
    let (line, col) = e.pos().unwrap_or((1, 1));
    DigestError::Template {
        origin: origin.to_string(),
        line,
        col,
        message: e.reason().to_string(),
    }
}

/// Trailing spaces removed and runs of blank lines collapsed to one, so template whitespace does not show.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_start_matches('\n').to_string()
}

/// What rendering needs beyond the plan.
#[derive(Debug, Clone)]
pub struct RenderSettings<'a> {
    pub site_title: &'a str,
    pub site_url: &'a str,
    pub language: &'a str,
    pub digest: &'a str,
    pub timezone: Tz,
    /// This subscriber's one-click unsubscribe page.
    pub unsubscribe_url: &'a str,
    pub postal_address: &'a str,
}

#[derive(Debug, Clone, Serialize)]
struct Context {
    site: SiteContext,
    digest: String,
    subject: String,
    subscriber: SubscriberContext,
    count: usize,
    one: bool,
    /// New articles besides the first (for subjects like "X and 2 more").
    more: usize,
    /// New articles `max_articles` left out (the oldest): the digest says how many and links the site.
    left_out: usize,
    first: ArticleContext,
    since: String,
    articles: Vec<ArticleContext>,
    related: Vec<RelatedContext>,
    reason: String,
    links: Links,
    postal_address: String,
}

#[derive(Debug, Clone, Serialize)]
struct SiteContext {
    title: String,
    url: String,
    language: String,
}

#[derive(Debug, Clone, Serialize)]
struct SubscriberContext {
    name: String,
    email: String,
}

#[derive(Debug, Clone, Serialize)]
struct ArticleContext {
    category: String,
    title: String,
    summary: String,
    date: String,
    date_iso: String,
    reading_time: String,
    url: String,
}

#[derive(Debug, Clone, Serialize)]
struct RelatedContext {
    title: String,
    date: String,
    reading_time: String,
    url: String,
    /// The title of the new article it was picked for.
    because: String,
}

#[derive(Debug, Clone, Serialize)]
struct Links {
    unsubscribe: String,
    site: String,
}

fn day<Z: TimeZone>(t: DateTime<Z>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%-d %b %Y").to_string()
}

fn reading_time(a: &Article) -> String {
    format!("{} min read", a.reading_minutes)
}

fn article_context(a: &Article, tz: Tz) -> ArticleContext {
    ArticleContext {
        category: a.category.clone().unwrap_or_default(),
        title: a.title.clone(),
        summary: a.summary.clone(),
        date: day(a.date, tz),
        date_iso: a.date.to_rfc3339(),
        reading_time: reading_time(a),
        url: a.url.clone(),
    }
}

fn context(plan: &DigestPlan<'_>, s: &RenderSettings<'_>) -> Context {
    let articles: Vec<ArticleContext> = plan
        .articles
        .iter()
        .map(|a| article_context(a, s.timezone))
        .collect();
    let subscriber = &plan.subscriber;
    let mut reason = format!(
        "You are receiving the {} digest of {} because you subscribed as {} on {}.",
        s.digest,
        s.site_title,
        subscriber.email,
        day(subscriber.created, s.timezone)
    );
    if !subscriber.categories.is_empty() {
        reason.push_str(&format!(
            " You follow: {}.",
            subscriber.categories.join(", ")
        ));
    }
    Context {
        site: SiteContext {
            title: s.site_title.into(),
            url: s.site_url.into(),
            language: s.language.into(),
        },
        digest: s.digest.into(),
        subject: String::new(),
        subscriber: SubscriberContext {
            name: subscriber.name.clone(),
            email: subscriber.email.to_string(),
        },
        count: articles.len(),
        one: articles.len() == 1,
        more: articles.len().saturating_sub(1),
        left_out: plan.over_limit,
        first: articles
            .first()
            .cloned()
            .expect("a plan has at least one article"),
        since: day(plan.window.after, s.timezone),
        related: plan
            .related
            .iter()
            .map(|p| RelatedContext {
                title: p.article.title.clone(),
                date: day(p.article.date, s.timezone),
                reading_time: reading_time(p.article),
                url: p.article.url.clone(),
                because: p.because.title.clone(),
            })
            .collect(),
        articles,
        reason,
        links: Links {
            unsubscribe: s.unsubscribe_url.into(),
            site: s.site_url.into(),
        },
        postal_address: s.postal_address.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_text_breaks_at_word_boundaries() {
        assert_eq!(wrap_text("aa bb cc dd", 5), "aa bb\ncc dd");
        assert_eq!(
            wrap_text("averyveryverylongword x", 5),
            "averyveryverylongword\nx"
        );
    }

    #[test]
    fn template_files_map_to_registries_and_names() {
        assert_eq!(classify("digest.html.hbs"), Some((true, "digest".into())));
        assert_eq!(
            classify("partials/footer.txt.hbs"),
            Some((false, "footer".into()))
        );
        assert_eq!(classify("README.md"), None);
        assert_eq!(
            classify("subscribe.html.hbs"),
            None,
            "not a digest template"
        );
    }
}
