//! Unsubscribe link tokens: HMAC-SHA256 over the subscriber's address and the list, keyed with a secret that
//! only the environment (`TIDINGS_SECRET`) or the state database holds. Unguessable without the secret, stable
//! for a subscriber and list so old messages keep working, verifiable without storing anything.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{EmailAddress, SuppressionKey};

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks link tokens with one secret.
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

    fn mac(&self, email: &EmailAddress, list: &str) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        // The NUL separator keeps ("a", "bc") and ("ab", "c") apart; neither part can contain one.
        mac.update(email.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(list.as_bytes());
        mac
    }

    /// The token for `email` on `list` (64 lowercase hex digits).
    pub fn unsubscribe(&self, email: &EmailAddress, list: &str) -> String {
        hex::encode(self.mac(email, list).finalize().into_bytes())
    }

    /// The keyed hash that stands for `email` in the suppression list (another purpose than unsubscribe tokens,
    /// so neither can be made from the other).
    pub fn suppression_key(&self, email: &EmailAddress) -> SuppressionKey {
        SuppressionKey(hex::encode(
            self.mac(email, "\0suppression").finalize().into_bytes(),
        ))
    }

    /// Whether `token` is the one for `email` on `list` (constant-time comparison).
    pub fn verify(&self, email: &EmailAddress, list: &str, token: &str) -> bool {
        let Ok(bytes) = hex::decode(token) else {
            return false;
        };
        self.mac(email, list).verify_slice(&bytes).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> EmailAddress {
        EmailAddress::parse("ada@example.com").unwrap()
    }

    #[test]
    fn tokens_are_stable_and_verify() {
        let tokens = LinkTokens::new(b"secret".to_vec());
        let t = tokens.unsubscribe(&ada(), "weekly");
        assert_eq!(t.len(), 64);
        assert_eq!(t, tokens.unsubscribe(&ada(), "weekly"));
        assert!(tokens.verify(&ada(), "weekly", &t));
    }

    #[test]
    fn tokens_differ_by_subscriber_list_and_secret() {
        let tokens = LinkTokens::new(b"secret".to_vec());
        let t = tokens.unsubscribe(&ada(), "weekly");
        let bob = EmailAddress::parse("bob@example.com").unwrap();
        assert!(!tokens.verify(&bob, "weekly", &t));
        assert!(!tokens.verify(&ada(), "daily", &t));
        assert!(!LinkTokens::new(b"other".to_vec()).verify(&ada(), "weekly", &t));
        assert!(!tokens.verify(&ada(), "weekly", "zz"));
        assert!(!tokens.verify(&ada(), "weekly", ""));
    }
}
