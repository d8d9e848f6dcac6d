//! The whole program against real parts: the real binary on fixture stores, real feed parsers and validators.
//! One integration binary (faster to link than one per file); each module is one area of behaviour.

mod browser;
mod cache;
mod daemon;
mod delivery;
mod digest;
mod feeds;
mod fuzz;
mod related;
mod replicas;
mod state;
mod stores;
mod support;
mod web;
mod web_browser;
