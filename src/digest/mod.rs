//! Digests: choosing what each subscriber gets at a tick ([`plan()`]) and rendering it ([`Templates`]).
//!
//! Pure: the catalog, what each subscriber already received (from `state`) and the tick go in; plans and
//! rendered parts come out. This module reads no clock and no database and sends nothing: `app` wires those, and
//! `mail` turns rendered parts into messages.

mod plan;
mod related;
mod render;
mod schedule;

use std::path::PathBuf;

pub use plan::{
    DigestPlan, LatePublications, PlanOutcome, RECENT_DIGESTS, RelatedPick, Skip, SubscriberView,
    Window, WindowStart, plan, window,
};
pub use related::{RelatedSource, Remembered};
pub use render::{GMAIL_CLIP_BYTES, Part, RenderSettings, RenderedDigest, Templates, wrap_text};
pub use schedule::{Schedule, ScheduleError};

/// Everything that can go wrong loading templates or rendering a digest, naming the template file and line.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("{origin}:{line}:{col}: error: {message}")]
    Template {
        origin: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{path}: cannot read template: {source}")]
    TemplateRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "template {0}.hbs is missing; restore it in the templates folder or remove the override"
    )]
    TemplateMissing(String),
    #[error("cannot inline the digest's CSS: {0}")]
    Inline(String),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<DigestError>),
}

#[cfg(test)]
mod tests;
