//! [`Subscriber`]: a person on the list, and [`SubscriberStatus`]: where they stand.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::EmailAddress;

/// Where a subscriber stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberStatus {
    /// Signed up, not yet confirmed (double opt-in): gets nothing.
    Pending,
    Confirmed,
    /// Left the list: remembered so that nothing (an import, a resumed run) mails them again.
    Unsubscribed,
    /// Mail to them failed for good too often: treated like unsubscribed.
    Bounced,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Pending => "pending",
            SubscriberStatus::Confirmed => "confirmed",
            SubscriberStatus::Unsubscribed => "unsubscribed",
            SubscriberStatus::Bounced => "bounced",
        }
    }

    /// The inverse of [`SubscriberStatus::as_str`].
    pub fn parse(s: &str) -> Option<SubscriberStatus> {
        [
            SubscriberStatus::Pending,
            SubscriberStatus::Confirmed,
            SubscriberStatus::Unsubscribed,
            SubscriberStatus::Bounced,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// Whether they left (unsubscribed or bounced): such an address is never mailed again.
    pub fn has_left(self) -> bool {
        matches!(
            self,
            SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced
        )
    }
}

/// A subscriber's stable, random name for links: 16 random bytes, given by the state when the subscriber is
/// first stored and never reused. Link tokens name a subscriber by it, so no URL carries the address; an
/// erased-and-returned address gets a new handle, so links from before the erasure name nobody.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriberHandle([u8; 16]);

impl SubscriberHandle {
    pub fn from_bytes(bytes: [u8; 16]) -> SubscriberHandle {
        SubscriberHandle(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Its stored form: 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The inverse of [`SubscriberHandle::to_hex`].
    pub fn parse_hex(s: &str) -> Option<SubscriberHandle> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        Some(SubscriberHandle(bytes))
    }
}

/// A subscriber as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub email: EmailAddress,
    /// Their name in link tokens (see [`SubscriberHandle`]).
    pub handle: SubscriberHandle,
    pub name: String,
    pub status: SubscriberStatus,
    /// Names of the `[[digest]]`s they take.
    pub digests: Vec<String>,
    /// Only articles of these categories (empty: all).
    pub categories: Vec<String>,
    pub created: DateTime<Utc>,
    pub confirmed: Option<DateTime<Utc>>,
    /// When they joined each digest (a digest added after subscribing starts then).
    pub joined: BTreeMap<String, DateTime<Utc>>,
}

impl Subscriber {
    pub fn takes(&self, digest: &str) -> bool {
        self.digests.iter().any(|d| d == digest)
    }

    /// When they joined `digest`: where a new subscriber's first window starts.
    pub fn joined_at(&self, digest: &str) -> DateTime<Utc> {
        self.joined.get(digest).copied().unwrap_or(self.created)
    }

    /// Whether a message of `digest` may go to them now: confirmed and still taking it.
    pub fn wants(&self, digest: &str) -> bool {
        self.status == SubscriberStatus::Confirmed && self.takes(digest)
    }
}

/// The keyed hash that stands for an address in the suppression list, so a forgotten person leaves no address
/// behind and is still never subscribed again (made with the link-token secret, see `mail::LinkTokens`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SuppressionKey(pub String);

/// A subscriber to add or update (`subscribers add` / `import`): confirmed, since the owner already has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriber {
    pub email: EmailAddress,
    pub name: String,
    pub digests: Vec<String>,
    pub categories: Vec<String>,
    /// When they subscribed (a migrated list keeps its original time).
    pub subscribed_at: DateTime<Utc>,
    /// When this add or import happens: a digest added to an existing subscriber is joined then.
    pub changed_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_reads_back_from_its_hex_and_nothing_else_does() {
        let handle = SubscriberHandle::from_bytes([7; 16]);
        assert_eq!(SubscriberHandle::parse_hex(&handle.to_hex()), Some(handle));
        for bad in [
            "",
            "07",
            "zz070707070707070707070707070707",
            &"07".repeat(17),
        ] {
            assert_eq!(SubscriberHandle::parse_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_status_reads_back_from_its_text() {
        for status in [
            SubscriberStatus::Pending,
            SubscriberStatus::Confirmed,
            SubscriberStatus::Unsubscribed,
            SubscriberStatus::Bounced,
        ] {
            assert_eq!(SubscriberStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SubscriberStatus::parse("gone"), None);
    }
}
