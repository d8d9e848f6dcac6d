//! tidings: a blog's article store in, RSS / Atom / JSON feeds and email digests out.
//!
//! The modules follow the data: `config` → `store` → `feed` (and later `related`, `digest`, `mail`, `state`),
//! with `app` as the composition root that does the I/O. See DESIGN.md in the project docs for the shape.

pub mod app;
pub mod config;
pub mod digest;
pub mod feed;
pub mod mail;
pub mod output;
pub mod related;
pub mod state;
pub mod store;
