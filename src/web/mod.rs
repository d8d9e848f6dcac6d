//! The HTTP side: the pages a blog links to for subscribing and every message links to for leaving, the feeds,
//! and the operator's `/healthz` and `/metrics`. [`serve`] runs it on a listener until a shutdown future
//! resolves; `tidings serve` and the daemon both call it with a [`Context`].
//!
//! | route | what it does |
//! |---|---|
//! | `GET /subscribe` | the form: email, name, digests and categories (repeatable), a honeypot field |
//! | `POST /subscribe` | stores a pending subscriber and mails a confirmation link; the same page whoever the address is |
//! | `GET /confirm?token=` | confirms (double opt-in); an invalid or expired link changes nothing |
//! | `GET /unsubscribe?token=` | a one-button page |
//! | `POST /unsubscribe?token=` | unsubscribes at once (RFC 8058 `List-Unsubscribe=One-Click`, or the button) |
//! | `GET`/`POST /preferences?token=` | change digests and categories |
//! | `GET /healthz`, `GET /metrics` | 200 when the state answers (else 503); Prometheus text |
//! | `GET /<file>` | feeds, `feed.xsl` and `related.json` from the output folder, with ETag / Last-Modified and 304s |
//!
//! Links carry opaque tokens (`mail::LinkTokens`), never the address. No page says whether an address is
//! subscribed: a sign-up answers the same page and status in every case, and the message it sends (a
//! confirmation, or "already subscribed" with a preferences link) goes out in the background so the answer's
//! timing does not depend on the mail server either. Sign-ups are rate-limited per client IP (429) and per
//! address (silently: the page is the same, no further message goes). Pages are Handlebars templates
//! ([`pages`]), plain HTML and CSS with no script, every typed value escaped, and sent with a strict
//! Content-Security-Policy and `Referrer-Policy: no-referrer` so a token in the URL does not leak onwards.

mod files;
mod limit;
mod links;
mod pages;
mod subscribe;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::app::NewsletterError;
use crate::config::Config;
use crate::mail::{DkimSigner, LinkTokens, MailError, Transport};
use crate::metrics::Metrics;
use crate::state::{State, StateError};
use crate::store::Catalog;

pub use pages::{Pages, SiteView};

/// Where "now" comes from: the system clock, or a pinned instant (`--now`, tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// A clock that always says `at`.
pub fn fixed_clock(at: DateTime<Utc>) -> Clock {
    Arc::new(move || at)
}

/// Everything that can stop the web side from starting or serving, naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("page templates:\n{0}")]
    Templates(String),
    #[error("cannot render {0}")]
    Render(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Newsletter(#[from] NewsletterError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("cannot listen on {address}: {source}; check [server] listen (TIDINGS_SERVER_LISTEN)")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
}

/// Messages the pages may be sending at once; [`serve`] waits for all of them to finish on shutdown.
const MAIL_SLOTS: u32 = 64;
/// How long [`serve`] waits on shutdown for messages still being sent.
const MAIL_DRAIN: Duration = Duration::from_secs(10);
/// A form body is a few hundred bytes; anything much larger is refused before it is read.
const BODY_LIMIT: usize = 16 * 1024;

/// What the handlers share: the config, the state, the transport, the link-token key, the templates, the
/// metrics, the clock and the rate limits. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Context(Arc<Shared>);

struct Shared {
    config: Arc<Config>,
    state: Arc<dyn State>,
    transport: Arc<dyn Transport>,
    metrics: Arc<Metrics>,
    tokens: LinkTokens,
    pages: Pages,
    site: SiteView,
    dkim: Option<DkimSigner>,
    clock: Clock,
    /// The categories a subscriber may choose (see [`Context::set_categories`]).
    categories: RwLock<Vec<String>>,
    per_ip: limit::KeyedLimit<IpAddr>,
    per_address: limit::KeyedLimit<String>,
    mail_slots: Arc<Semaphore>,
    /// Output file → (modified, length, ETag): a feed is hashed once per change, not once per request.
    etags: Mutex<std::collections::HashMap<PathBuf, (SystemTime, u64, String)>>,
}

impl Context {
    /// Builds the context from the config and the state: the link-token secret (`secret` is `TIDINGS_SECRET`,
    /// else the state's stored one), the page templates (built-in, overridden from `[newsletter] templates`),
    /// the DKIM key, and the categories of the store as it is now. `clock` is [`system_clock`] in service and a
    /// [`fixed_clock`] under `--now`.
    pub async fn new(
        config: Arc<Config>,
        state: Arc<dyn State>,
        transport: Arc<dyn Transport>,
        metrics: Arc<Metrics>,
        secret: Option<&str>,
        clock: Clock,
    ) -> Result<Context, WebError> {
        let tokens = crate::app::link_tokens(state.as_ref(), secret).await?;
        let pages = Pages::load(&config.newsletter.templates)?;
        let dkim = config
            .mail
            .dkim
            .as_ref()
            .map(DkimSigner::load)
            .transpose()?;
        let (catalog, _) = crate::store::load(&config);
        let categories = crate::app::known_categories(&config, &catalog);
        let site = SiteView {
            title: config.site.title.clone(),
            url: config.site.base_url.to_string(),
            language: config.site.language.clone(),
            postal_address: config.newsletter.postal_address.clone(),
        };
        Ok(Context(Arc::new(Shared {
            per_ip: limit::KeyedLimit::per_hour(config.server.signups_per_hour_per_ip),
            per_address: limit::KeyedLimit::per_hour(config.server.signups_per_hour_per_address),
            config,
            state,
            transport,
            metrics,
            tokens,
            pages,
            site,
            dkim,
            clock,
            categories: RwLock::new(categories),
            mail_slots: Arc::new(Semaphore::new(MAIL_SLOTS as usize)),
            etags: Mutex::new(Default::default()),
        })))
    }

    /// Takes the categories of a freshly built store (the daemon calls this after each build), so a category
    /// that just got its first article can be chosen.
    pub fn set_categories(&self, catalog: &Catalog) {
        let known = crate::app::known_categories(&self.0.config, catalog);
        *self
            .0
            .categories
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = known;
    }
}

/// Binds `[server] listen` (for callers that do not bring their own listener).
pub async fn bind(config: &Config) -> Result<TcpListener, WebError> {
    let address = config.server.listen;
    TcpListener::bind(address)
        .await
        .map_err(|source| WebError::Listen { address, source })
}

/// Serves the pages on `listener` until `shutdown` resolves; then stops accepting, lets requests in flight
/// finish, and waits (up to 10 s) for confirmation messages still being sent.
pub async fn serve(
    listener: TcpListener,
    ctx: Context,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let slots = Arc::clone(&ctx.0.mail_slots);
    let app = router(ctx).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(WebError::Serve)?;
    if tokio::time::timeout(MAIL_DRAIN, slots.acquire_many(MAIL_SLOTS))
        .await
        .is_err()
    {
        tracing::warn!("stopped with confirmation messages still being sent");
    }
    Ok(())
}

fn router(ctx: Context) -> Router {
    Router::new()
        .route("/subscribe", get(subscribe::form).post(subscribe::submit))
        .route("/confirm", get(links::confirm))
        .route(
            "/unsubscribe",
            get(links::unsubscribe_page).post(links::unsubscribe),
        )
        .route(
            "/preferences",
            get(links::preferences_page).post(links::preferences_save),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(files::file)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(ctx)
}

impl Shared {
    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// A whole HTML page with the security headers every page carries.
    fn page(
        &self,
        status: StatusCode,
        name: &str,
        title: &str,
        data: serde_json::Value,
    ) -> Response {
        match self.pages.page(name, &self.site, title, &data) {
            Ok(body) => html_response(status, body),
            Err(e) => {
                tracing::error!("{e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot render the page\n",
                )
                    .into_response()
            }
        }
    }

    /// The generic message page.
    fn message(&self, status: StatusCode, title: &str, text: &str) -> Response {
        self.page(
            status,
            "message",
            title,
            serde_json::json!({ "text": text }),
        )
    }

    /// The page for a failure the visitor cannot fix (the cause is logged, not shown).
    fn failed(&self, e: impl std::fmt::Display) -> Response {
        tracing::error!("{e}");
        self.message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Nothing was changed. Please try again in a few minutes.",
        )
    }

    fn categories(&self) -> Vec<String> {
        self.categories
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn digest_names(&self) -> Vec<String> {
        self.config.digest.iter().map(|d| d.name.clone()).collect()
    }

    /// `<public_url>/<page>?token=…`.
    fn link(&self, page: &str, token: &str) -> String {
        crate::app::link_url(&self.config, page, token)
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        // Pages carry tokens in their URL and show a subscriber's choices: never cached, never referred.
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `200 ok` when the state answers within 2 s, else `503`.
async fn healthz(Extract(ctx): Extract<Context>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), ctx.0.state.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!("health check: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "state database unavailable\n",
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "state database did not answer\n",
        )
            .into_response(),
    }
}

/// Prometheus text: the process's counters and the ledger's runs and messages.
async fn metrics(Extract(ctx): Extract<Context>) -> Response {
    let runs = match ctx.0.state.runs(None).await {
        Ok(runs) => Some(runs),
        Err(e) => {
            tracing::warn!("metrics: {e}");
            None
        }
    };
    let body = ctx.0.metrics.render(runs.as_deref());
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The client's address: the peer's, or (from a loopback peer, when `[server] client_ip_header` names one) the
/// last address in that header, which is the one the proxy added. IPv6 clients are counted by their /64, which
/// one subscriber usually holds whole.
fn client_ip(config: &Config, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let from_proxy = config
        .server
        .client_ip_header
        .as_deref()
        .filter(|_| peer.ip().is_loopback())
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match from_proxy.unwrap_or(peer.ip()) {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(header: Option<&str>) -> Config {
        let mut text = "[site]\ntitle = \"Blog\"\nbase_url = \"https://example.com\"\n".to_string();
        if let Some(h) = header {
            text.push_str(&format!("[server]\nclient_ip_header = \"{h}\"\n"));
        }
        Config::parse(
            std::path::Path::new("config.toml"),
            &text,
            Vec::new(),
            std::path::Path::new("/srv"),
        )
        .unwrap()
    }

    #[test]
    fn a_forwarded_address_is_believed_only_from_a_loopback_proxy_and_only_its_last_hop() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7"),
        );
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        let trusting = config(Some("X-Forwarded-For"));
        assert_eq!(
            client_ip(&trusting, local, &headers).to_string(),
            "203.0.113.7"
        );
        assert_eq!(
            client_ip(&trusting, remote, &headers).to_string(),
            "198.51.100.1"
        );
        assert_eq!(
            client_ip(&config(None), local, &headers).to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let peer: SocketAddr = "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443".parse().unwrap();
        assert_eq!(
            client_ip(&config(None), peer, &HeaderMap::new()).to_string(),
            "2001:db8:1:2::"
        );
    }
}
