//! The pages a message links to, each opened with a signed token for its one purpose: `/confirm`,
//! `/unsubscribe` (a page, and the RFC 8058 one-click POST) and `/preferences`. A token that is missing,
//! forged, altered, for another page or (a confirmation) expired gets the "not valid" page with status 400 and
//! changes nothing; so does a genuine token whose subscriber was erased.

// The `Err` of these helpers is the page to answer with, made once per request: boxing it buys nothing.
#![allow(clippy::result_large_err)]

use axum::Form;
use axum::extract::{Query, State as Extract};
use axum::http::StatusCode;
use axum::response::Response;

use super::pages::choices;
use super::subscribe::{Posted, check_choices};
use super::{Context, Shared};
use crate::domain::Subscriber;
use crate::mail::{CONFIRM_VALID_FOR, LinkToken, Purpose, TokenError};
use crate::state::{ConfirmOutcome, LeaveOutcome, PreferencesOutcome};

#[derive(Debug, serde::Deserialize)]
pub(super) struct TokenQuery {
    token: Option<String>,
}

fn invalid(ctx: &Shared, error: TokenError) -> Response {
    let expired = error == TokenError::Expired;
    ctx.page(
        StatusCode::BAD_REQUEST,
        "invalid-link",
        if expired {
            "Link expired"
        } else {
            "Link not valid"
        },
        serde_json::json!({ "expired": expired, "valid_days": CONFIRM_VALID_FOR.num_days() }),
    )
}

/// The token of `query` checked for `purpose`, or the page that says why not.
fn verified(ctx: &Shared, query: &TokenQuery, purpose: Purpose) -> Result<LinkToken, Response> {
    let token = query.token.as_deref().unwrap_or("");
    ctx.tokens
        .verify(token, purpose, ctx.now())
        .map_err(|e| invalid(ctx, e))
}

/// The token's subscriber, or the "not valid" page (erased since the link was made).
async fn subscriber(ctx: &Shared, token: &LinkToken) -> Result<Subscriber, Response> {
    match ctx.state.subscriber_by_handle(&token.handle).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(invalid(ctx, TokenError::Malformed)),
        Err(e) => Err(ctx.failed(e)),
    }
}

pub(super) async fn confirm(
    Extract(ctx): Extract<Context>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let ctx = &ctx.0;
    let token = match verified(ctx, &query, Purpose::Confirm) {
        Ok(token) => token,
        Err(page) => return page,
    };
    match ctx.state.confirm(&token.handle, ctx.now()).await {
        Ok(ConfirmOutcome::Confirmed | ConfirmOutcome::AlreadyConfirmed) => {}
        Ok(ConfirmOutcome::NotFound) => return invalid(ctx, TokenError::Malformed),
        Err(e) => return ctx.failed(e),
    }
    let s = match subscriber(ctx, &token).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    ctx.page(
        StatusCode::OK,
        "confirmed",
        "Subscribed",
        serde_json::json!({
            "digests": s.digests,
            "categories": s.categories,
            "preferences_url": ctx.link("preferences", &ctx.tokens.preferences(&token.handle)),
        }),
    )
}

pub(super) async fn unsubscribe_page(
    Extract(ctx): Extract<Context>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let ctx = &ctx.0;
    let token = match verified(ctx, &query, Purpose::Unsubscribe) {
        Ok(token) => token,
        Err(page) => return page,
    };
    let s = match subscriber(ctx, &token).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let left = s.status.has_left() || token.digest.as_deref().is_some_and(|d| !s.takes(d));
    ctx.page(
        StatusCode::OK,
        "unsubscribe",
        "Unsubscribe",
        serde_json::json!({
            "left": left,
            "digest": token.digest,
            "preferences_url": ctx.link("preferences", &ctx.tokens.preferences(&token.handle)),
        }),
    )
}

/// The one-click POST (RFC 8058: the body is `List-Unsubscribe=One-Click`, as a form or multipart; the page's
/// button posts the same). The token alone decides, so the body is not read: a mail provider's POST in either
/// encoding works, and there is no further step.
pub(super) async fn unsubscribe(
    Extract(ctx): Extract<Context>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let ctx = &ctx.0;
    let token = match verified(ctx, &query, Purpose::Unsubscribe) {
        Ok(token) => token,
        Err(page) => return page,
    };
    let outcome = match ctx
        .state
        .leave(&token.handle, token.digest.as_deref(), ctx.now())
        .await
    {
        Ok(LeaveOutcome::NotFound) => return invalid(ctx, TokenError::Malformed),
        Ok(outcome) => outcome,
        Err(e) => return ctx.failed(e),
    };
    let still = match outcome {
        LeaveOutcome::LeftDigest => match subscriber(ctx, &token).await {
            Ok(s) => s.digests,
            Err(page) => return page,
        },
        _ => Vec::new(),
    };
    ctx.page(
        StatusCode::OK,
        "unsubscribed",
        "Unsubscribed",
        serde_json::json!({
            "digest": token.digest,
            "still": still,
            "preferences_url": ctx.link("preferences", &ctx.tokens.preferences(&token.handle)),
        }),
    )
}

fn preferences(
    ctx: &Shared,
    status: StatusCode,
    token: &LinkToken,
    s: &Subscriber,
    saved: bool,
    errors: &[String],
) -> Response {
    ctx.page(
        status,
        "preferences",
        "Your subscription",
        serde_json::json!({
            "left": s.status.has_left(),
            "saved": saved,
            "errors": errors,
            "digests": choices(&ctx.digest_names(), &s.digests),
            "categories": choices(&ctx.categories(), &s.categories),
            "unsubscribe_url": ctx.link("unsubscribe", &ctx.tokens.unsubscribe(&token.handle, None)),
        }),
    )
}

pub(super) async fn preferences_page(
    Extract(ctx): Extract<Context>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let ctx = &ctx.0;
    let token = match verified(ctx, &query, Purpose::Preferences) {
        Ok(token) => token,
        Err(page) => return page,
    };
    match subscriber(ctx, &token).await {
        Ok(s) => preferences(ctx, StatusCode::OK, &token, &s, false, &[]),
        Err(page) => page,
    }
}

pub(super) async fn preferences_save(
    Extract(ctx): Extract<Context>,
    Query(query): Query<TokenQuery>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = &ctx.0;
    let token = match verified(ctx, &query, Purpose::Preferences) {
        Ok(token) => token,
        Err(page) => return page,
    };
    let mut s = match subscriber(ctx, &token).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let posted = Posted::from_pairs(pairs);
    let (digests, categories) = match check_choices(ctx, &posted.digests, &posted.categories) {
        Ok(chosen) => chosen,
        Err(errors) => {
            // Show what they ticked, with what is wrong; nothing is saved.
            s.digests = posted.digests;
            s.categories = posted.categories;
            return preferences(ctx, StatusCode::BAD_REQUEST, &token, &s, false, &errors);
        }
    };
    match ctx
        .state
        .set_preferences(&token.handle, &digests, &categories, ctx.now())
        .await
    {
        Ok(PreferencesOutcome::Saved) => {
            s.digests = digests;
            s.categories = categories;
            preferences(ctx, StatusCode::OK, &token, &s, true, &[])
        }
        Ok(PreferencesOutcome::HasLeft) => preferences(ctx, StatusCode::OK, &token, &s, false, &[]),
        Ok(PreferencesOutcome::NotFound) => invalid(ctx, TokenError::Malformed),
        Err(e) => ctx.failed(e),
    }
}
