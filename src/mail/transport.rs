//! Transports: where a finished message goes, each answering with a named [`DeliveryOutcome`] that the delivery
//! worker records in the ledger. The file outbox (`[mail] transport = "file"`, the default) writes one `.eml` per
//! message so a new user sees real mail without a server; [`SmtpRelay`](super::SmtpRelay) and
//! [`Sendmail`](super::Sendmail) hand messages on for real.

use std::path::{Path, PathBuf};

use lettre::Message;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Accepted (for the outbox: the file is written); `reply` is the server's answer or where it went.
    Sent { reply: String },
    /// Refused for now (a 4xx reply, a dropped connection, a timeout): worth trying again later.
    Deferred { reply: String },
    /// Refused for good (a 5xx reply about this message or recipient): never to be retried.
    Failed { reply: String },
    /// The transport cannot take any message now (server down, TLS or authentication failure): nothing is
    /// wrong with this message, and sending more now would fail the same way.
    Unavailable { reason: String },
}

/// Hands a finished message on. `&self` and `Sync` so one transport serves several concurrent sends.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, message: &Message, message_id: &str) -> DeliveryOutcome;
}

/// Writes each message to `<dir>/<Message-ID local part>.eml`, atomically (temp file + rename), so a re-send of
/// the same message replaces its file instead of adding a second.
pub struct FileOutbox {
    dir: PathBuf,
}

impl FileOutbox {
    pub fn new(dir: &Path) -> FileOutbox {
        FileOutbox {
            dir: dir.to_owned(),
        }
    }

    /// The file a message with this Message-ID is written to.
    pub fn path_for(&self, message_id: &str) -> PathBuf {
        let local = message_id
            .trim_matches(['<', '>'])
            .split('@')
            .next()
            .unwrap_or("message");
        let name: String = local
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{name}.eml"))
    }
}

#[async_trait::async_trait]
impl Transport for FileOutbox {
    async fn send(&self, message: &Message, message_id: &str) -> DeliveryOutcome {
        let path = self.path_for(message_id);
        match crate::output::write_private_if_changed(&path, &message.formatted()) {
            Ok(_) => DeliveryOutcome::Sent {
                reply: path.display().to_string(),
            },
            Err(e) => DeliveryOutcome::Deferred {
                reply: format!("cannot write {}: {e}", path.display()),
            },
        }
    }
}
