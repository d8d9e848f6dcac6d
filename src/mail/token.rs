//! Link tokens: the opaque `?token=` in every confirm, unsubscribe and preferences link, and the keyed hash
//! that stands for a forgotten address in the suppression list. Both are HMAC-SHA256 keyed with a secret that
//! only the environment (`TIDINGS_SECRET`) or the state database holds.
//!
//! A link token names one subscriber by their random [`SubscriberHandle`] (never the address: an address in a
//! URL leaks to proxies and logs, and spam filters score it) and one [`Purpose`], both inside the signed bytes,
//! so a token cannot be moved to another subscriber or used for another page. Its layout, before base64url:
//!
//! ```text
//! version (1) | purpose (1) | handle (16) | details | HMAC-SHA256(secret, "tidings link\0" | everything before)
//! ```
//!
//! where the details are the issue time (8 bytes, big-endian Unix seconds) for a confirmation, the digest's
//! name (possibly empty: the whole list) for an unsubscribe, and nothing for preferences. Only confirmation
//! tokens expire ([`CONFIRM_VALID_FOR`]): unsubscribe and preferences links in old messages must keep working.
//! Verifying needs nothing stored; the caller passes `now`, so tests pin it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{EmailAddress, SubscriberHandle, SuppressionKey};

type HmacSha256 = Hmac<Sha256>;

/// How long a confirmation link works after it was sent.
pub const CONFIRM_VALID_FOR: TimeDelta = TimeDelta::days(7);

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
const HEAD_LEN: usize = 2 + 16;
/// Longer input is refused before decoding (a digest name is at most a few dozen characters).
const MAX_TOKEN_CHARS: usize = 512;
/// Keeps link MACs apart from suppression keys, whose input is an address (which cannot start like this).
const LINK_DOMAIN: &[u8] = b"tidings link\0";

/// What a link token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirm a pending subscription (double opt-in); expires.
    Confirm,
    /// Leave one digest, or the whole list.
    Unsubscribe,
    /// Change digests and categories.
    Preferences,
}

impl Purpose {
    fn byte(self) -> u8 {
        match self {
            Purpose::Confirm => 1,
            Purpose::Unsubscribe => 2,
            Purpose::Preferences => 3,
        }
    }
}

/// A verified token's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    pub handle: SubscriberHandle,
    /// For an unsubscribe token: the digest it leaves (`None`: the whole list).
    pub digest: Option<String>,
    /// For a confirmation token: when it was issued.
    pub issued: Option<DateTime<Utc>>,
}

/// Why a token was refused. Pages show one "this link is not valid" for all but [`TokenError::Expired`], which
/// is only ever reported for a token that is genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not one tidings makes")]
    Malformed,
    #[error("the token's signature does not match (forged, altered, or made with another secret)")]
    Forged,
    #[error("the token is for another page")]
    WrongPurpose,
    #[error("the link has expired")]
    Expired,
}

/// Signs and checks link tokens and suppression keys with one secret.
#[derive(Clone)]
pub struct LinkTokens {
    secret: Vec<u8>,
}

impl std::fmt::Debug for LinkTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkTokens(<secret>)")
    }
}

impl LinkTokens {
    pub fn new(secret: impl Into<Vec<u8>>) -> LinkTokens {
        LinkTokens {
            secret: secret.into(),
        }
    }

    fn hmac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret).expect("HMAC takes a key of any length")
    }

    /// The keyed hash that stands for `email` in the suppression list.
    pub fn suppression_key(&self, email: &EmailAddress) -> SuppressionKey {
        let mut mac = self.hmac();
        // The NUL separator keeps the address apart from the label; an address cannot contain one.
        mac.update(email.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(b"\0suppression");
        SuppressionKey(hex::encode(mac.finalize().into_bytes()))
    }

    fn sign(&self, purpose: Purpose, handle: &SubscriberHandle, details: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(HEAD_LEN + details.len() + MAC_LEN);
        bytes.push(VERSION);
        bytes.push(purpose.byte());
        bytes.extend_from_slice(handle.as_bytes());
        bytes.extend_from_slice(details);
        let mut mac = self.hmac();
        mac.update(LINK_DOMAIN);
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A confirmation token issued at `issued`, valid for [`CONFIRM_VALID_FOR`].
    pub fn confirm(&self, handle: &SubscriberHandle, issued: DateTime<Utc>) -> String {
        self.sign(Purpose::Confirm, handle, &issued.timestamp().to_be_bytes())
    }

    /// An unsubscribe token for `digest` (`None`: the whole list). Stable, so every message's link is the same.
    pub fn unsubscribe(&self, handle: &SubscriberHandle, digest: Option<&str>) -> String {
        self.sign(
            Purpose::Unsubscribe,
            handle,
            digest.unwrap_or("").as_bytes(),
        )
    }

    /// A preferences token. Stable.
    pub fn preferences(&self, handle: &SubscriberHandle) -> String {
        self.sign(Purpose::Preferences, handle, &[])
    }

    /// Checks `token` for `purpose` at `now`: the signature first (in constant time), then what it says.
    pub fn verify(
        &self,
        token: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<LinkToken, TokenError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < HEAD_LEN + MAC_LEN {
            return Err(TokenError::Malformed);
        }
        let (signed, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut mac = self.hmac();
        mac.update(LINK_DOMAIN);
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| TokenError::Forged)?;
        if signed[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        if signed[1] != purpose.byte() {
            return Err(TokenError::WrongPurpose);
        }
        let handle = SubscriberHandle::from_bytes(
            signed[2..HEAD_LEN]
                .try_into()
                .expect("the head holds 16 handle bytes"),
        );
        let details = &signed[HEAD_LEN..];
        let mut token = LinkToken {
            handle,
            digest: None,
            issued: None,
        };
        match purpose {
            Purpose::Confirm => {
                let seconds: [u8; 8] = details.try_into().map_err(|_| TokenError::Malformed)?;
                let issued = DateTime::from_timestamp(i64::from_be_bytes(seconds), 0)
                    .ok_or(TokenError::Malformed)?;
                if now > issued + CONFIRM_VALID_FOR {
                    return Err(TokenError::Expired);
                }
                token.issued = Some(issued);
            }
            Purpose::Unsubscribe => {
                let digest = std::str::from_utf8(details).map_err(|_| TokenError::Malformed)?;
                token.digest = (!digest.is_empty()).then(|| digest.to_string());
            }
            Purpose::Preferences if details.is_empty() => {}
            Purpose::Preferences => return Err(TokenError::Malformed),
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn ada() -> SubscriberHandle {
        SubscriberHandle::from_bytes([0xad; 16])
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap()
    }

    fn tokens() -> LinkTokens {
        LinkTokens::new(b"secret".to_vec())
    }

    #[test]
    fn each_token_verifies_for_its_own_purpose_and_says_what_it_was_made_with() {
        let t = tokens();
        let confirm = t.confirm(&ada(), now());
        assert_eq!(
            t.verify(&confirm, Purpose::Confirm, now()).unwrap(),
            LinkToken {
                handle: ada(),
                digest: None,
                issued: Some(now())
            }
        );
        let leave = t.unsubscribe(&ada(), Some("weekly"));
        let token = t.verify(&leave, Purpose::Unsubscribe, now()).unwrap();
        assert_eq!(
            (token.handle, token.digest.as_deref()),
            (ada(), Some("weekly"))
        );
        let all = t.unsubscribe(&ada(), None);
        assert_eq!(
            t.verify(&all, Purpose::Unsubscribe, now()).unwrap().digest,
            None
        );
        let prefs = t.preferences(&ada());
        assert_eq!(
            t.verify(&prefs, Purpose::Preferences, now())
                .unwrap()
                .handle,
            ada()
        );
    }

    #[test]
    fn tokens_are_url_safe_and_never_carry_the_handle_in_the_clear_as_hex() {
        let t = tokens().unsubscribe(&ada(), Some("weekly"));
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{t}"
        );
        assert!(!t.contains(&ada().to_hex()));
    }

    #[test]
    fn a_token_for_one_purpose_is_refused_for_every_other() {
        let t = tokens();
        let made = [
            (Purpose::Confirm, t.confirm(&ada(), now())),
            (Purpose::Unsubscribe, t.unsubscribe(&ada(), None)),
            (Purpose::Preferences, t.preferences(&ada())),
        ];
        for (made_for, token) in &made {
            for used_for in [Purpose::Confirm, Purpose::Unsubscribe, Purpose::Preferences] {
                let result = t.verify(token, used_for, now());
                if used_for == *made_for {
                    assert!(result.is_ok(), "{made_for:?}");
                } else {
                    assert_eq!(
                        result,
                        Err(TokenError::WrongPurpose),
                        "{made_for:?} used for {used_for:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_confirmation_expires_after_seven_days_to_the_second() {
        let t = tokens();
        let token = t.confirm(&ada(), now());
        assert!(
            t.verify(&token, Purpose::Confirm, now() + CONFIRM_VALID_FOR)
                .is_ok()
        );
        assert_eq!(
            t.verify(
                &token,
                Purpose::Confirm,
                now() + CONFIRM_VALID_FOR + TimeDelta::seconds(1)
            ),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn unsubscribe_and_preferences_tokens_never_expire_and_are_stable() {
        let t = tokens();
        let later = now() + TimeDelta::days(3650);
        let leave = t.unsubscribe(&ada(), Some("weekly"));
        assert_eq!(leave, t.unsubscribe(&ada(), Some("weekly")));
        assert!(t.verify(&leave, Purpose::Unsubscribe, later).is_ok());
        assert!(
            t.verify(&t.preferences(&ada()), Purpose::Preferences, later)
                .is_ok()
        );
    }

    #[test]
    fn forged_tampered_and_foreign_tokens_are_refused() {
        let t = tokens();
        let token = t.unsubscribe(&ada(), Some("weekly"));
        // Another secret.
        assert_eq!(
            LinkTokens::new(b"other".to_vec()).verify(&token, Purpose::Unsubscribe, now()),
            Err(TokenError::Forged)
        );
        // Every single changed byte (handle, purpose, digest, MAC) breaks the signature.
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            assert_eq!(
                t.verify(
                    &URL_SAFE_NO_PAD.encode(&altered),
                    Purpose::Unsubscribe,
                    now()
                ),
                Err(TokenError::Forged),
                "byte {i}"
            );
        }
        // Another subscriber's handle with this token's MAC.
        let mut moved = bytes.clone();
        moved[2..18].copy_from_slice(&[0xbb; 16]);
        assert_eq!(
            t.verify(&URL_SAFE_NO_PAD.encode(&moved), Purpose::Unsubscribe, now()),
            Err(TokenError::Forged)
        );
        for junk in [
            "",
            "zz",
            "!!!!",
            &"A".repeat(600),
            &token[..token.len() - 4],
        ] {
            assert!(
                t.verify(junk, Purpose::Unsubscribe, now()).is_err(),
                "{junk}"
            );
        }
    }

    #[test]
    fn suppression_keys_are_stable_per_address_and_secret() {
        let ada = EmailAddress::parse("ada@example.com").unwrap();
        let bob = EmailAddress::parse("bob@example.com").unwrap();
        let t = tokens();
        assert_eq!(t.suppression_key(&ada), t.suppression_key(&ada));
        assert_ne!(t.suppression_key(&ada), t.suppression_key(&bob));
        assert_ne!(
            t.suppression_key(&ada),
            LinkTokens::new(b"other".to_vec()).suppression_key(&ada)
        );
    }
}
