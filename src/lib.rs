//! tidings: a blog's article store in, RSS / Atom / JSON feeds and email digests out.
//!
//! The modules follow the data: `config` → `store` → `feed` and `related` → `digest` → `mail`, with `domain`
//! holding the values they share about subscribers and deliveries, `state` remembering them, and `app` as the
//! composition root that does the I/O. `web` serves the subscriber pages and the feeds over HTTP, `metrics`
//! counts what the service does for `/metrics`. The README's "How it is built" lists each module's one job.

pub mod app;
pub mod cache;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod domain;
pub mod feed;
pub mod mail;
pub mod metrics;
pub mod output;
pub mod related;
pub mod schedule;
pub mod state;
pub mod store;
pub mod web;
