//! Transports: where a finished message goes. The file outbox (`[mail] transport = "file"`, the default) writes
//! one `.eml` per message so a new user sees real mail without a server; SMTP comes next behind the same trait.

use std::path::{Path, PathBuf};

use lettre::Message;

/// What became of one message; the caller records it in the delivery ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The transport accepted it (for the outbox: the file is written). `location` says where it went.
    Sent { location: String },
    /// A failure worth retrying later (disk full, server busy).
    RetryLater(String),
    /// Refused for good (the address does not exist).
    Rejected(String),
}

/// Hands a finished message on. `Send` so a send can run on any of the runtime's threads.
pub trait Transport: Send {
    fn send(&mut self, message: &Message, message_id: &str) -> DeliveryOutcome;
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

impl Transport for FileOutbox {
    fn send(&mut self, message: &Message, message_id: &str) -> DeliveryOutcome {
        let path = self.path_for(message_id);
        match crate::output::write_private_if_changed(&path, &message.formatted()) {
            Ok(_) => DeliveryOutcome::Sent {
                location: path.display().to_string(),
            },
            Err(e) => DeliveryOutcome::RetryLater(format!("cannot write {}: {e}", path.display())),
        }
    }
}
