//! tidings: a blog's article store in, RSS / Atom / JSON feeds and email digests out.
//!
//! The modules follow the data: `config` → `store` → `feed` and `related` → `digest` → `mail`, with `domain`
//! holding the values they share about subscribers and deliveries, `state` remembering them, and `app` as the
//! composition root that does the I/O. The README's "How it is built" lists each module's one job.

pub mod app;
pub mod cache;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod domain;
pub mod feed;
pub mod mail;
pub mod output;
pub mod related;
pub mod state;
pub mod store;
