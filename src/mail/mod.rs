//! Mail: turning a rendered digest into a MIME message ([`compose`]), signing it ([`DkimSigner`]), the
//! unsubscribe link tokens ([`LinkTokens`]), the transports that hand messages on ([`Transport`]: file outbox,
//! SMTP, sendmail). The pace they may go at is the sender's (`delivery`'s shared send budget).
//!
//! `compose` is pure (every header value, the date and the Message-ID are parameters); transports do the I/O and
//! answer with a named [`DeliveryOutcome`]. This module does not decide who gets what (`digest`), nor retry or
//! record anything (`delivery` and `state`).

mod compose;
mod dkim;
mod smtp;
mod token;
mod transport;

use std::path::PathBuf;

pub use compose::{
    Envelope, NAME_CHARS, SOFT_BREAK, SUBJECT_CHARS, compose, message_id, quoted_printable,
    shortened,
};
pub use dkim::DkimSigner;
pub use smtp::{Sendmail, SmtpRelay, SmtpSettings};
pub use token::{CONFIRM_VALID_FOR, LinkToken, LinkTokens, Purpose, TokenError};
pub use transport::{DeliveryOutcome, FileOutbox, Transport};

/// Everything that can go wrong building or signing a message, naming the input and the fix.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("\"{value}\" is not a mailbox for {field}: {reason}")]
    Mailbox {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot build the message to {to}: {reason}")]
    Build { to: String, reason: String },
    #[error("{path}: cannot read the DKIM key ([mail.dkim] key_file): {source}")]
    DkimRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not an RSA private key in PKCS#1 PEM ({reason}); create one with `openssl genrsa -traditional -out {} 2048` or convert with `openssl rsa -traditional`",
        path.display()
    )]
    DkimKey { path: PathBuf, reason: String },
    #[error("[mail.dkim] {field} \"{value}\" is not usable in a DKIM signature")]
    DkimSetting { field: &'static str, value: String },
    #[error("{what} {reason}")]
    Transport { what: &'static str, reason: String },
}
