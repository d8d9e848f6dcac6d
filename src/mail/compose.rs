//! Building the MIME message of one digest: multipart/alternative (text, then HTML) with the list headers mail
//! clients and RFC 2369 / 8058 expect. Pure: the date, Message-ID and boundary are parameters, so the same input
//! gives the same bytes.

use std::time::SystemTime;

use chrono::{DateTime, FixedOffset};
use lettre::Message;
use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use super::MailError;
use crate::digest::{Part, RenderedDigest};
use crate::domain::EmailAddress;
use crate::store::single_line;

/// Everything about a message besides its rendered parts.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `[newsletter] from`.
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub to: EmailAddress,
    /// The recipient's display name (may be empty).
    pub to_name: String,
    pub date: DateTime<FixedOffset>,
    /// `<left@domain>`.
    pub message_id: String,
    /// The full `List-Id` value, `"Name" <id.domain>`.
    pub list_id: String,
    /// The https one-click unsubscribe URL (RFC 8058). No `mailto:` beside it: nothing reads such mail.
    pub unsubscribe_url: String,
}

/// A Message-ID in the sender's domain, stable for one digest, tick and subscriber (so a resumed send reuses it
/// and receivers can drop a duplicate). The address is hashed, not shown.
pub fn message_id(
    digest: &str,
    tick: DateTime<FixedOffset>,
    to: &EmailAddress,
    domain: &str,
) -> String {
    let hash = Sha256::digest(to.as_str().as_bytes());
    let short = hex::encode(&hash[..8]);
    format!(
        "<{digest}.{}.{short}@{domain}>",
        tick.naive_utc().format("%Y%m%dT%H%M%SZ")
    )
}

/// At most this many characters of a Subject: a title can be of any length, a header line can not (RFC 5322 caps
/// it at 998 octets, and mail clients show far less).
pub const SUBJECT_CHARS: usize = 150;
/// At most this many characters of a display name (the recipient's, the list's).
pub const NAME_CHARS: usize = 64;

/// `text` on one line, cut to `max` characters at a word boundary where there is one, with an ellipsis.
pub fn shortened(text: &str, max: usize) -> String {
    let text = single_line(text);
    if text.chars().count() <= max {
        return text;
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    let at_word = match cut.rfind(' ') {
        Some(i) if i > cut.len() / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", at_word.trim_end())
}

fn raw(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), single_line(&value))
}

/// A part as a quoted-printable body. A merged part reuses the encoding of its shared pieces (most of a
/// message's bytes), so each message encodes only its own values; quoted-printable, unlike 7bit, takes any text.
fn quoted_printable_body(part: &Part) -> Body {
    let encoded = part.encoded(quoted_printable, SOFT_BREAK);
    Body::dangerous_pre_encoded(
        encoded.into_bytes(),
        ContentTransferEncoding::QuotedPrintable,
    )
}

/// A quoted-printable line break that decodes to nothing.
pub const SOFT_BREAK: &str = "=\r\n";

/// `text` quoted-printable encoded, with CRLF line ends as mail wants, in lines of at most 75 characters, so
/// that joining two encoded pieces with a [`SOFT_BREAK`] keeps every line within the 76 that RFC 2045 allows.
pub fn quoted_printable(text: &str) -> String {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    quoted_printable::encode_with_options(
        crlf,
        quoted_printable::Options::default().line_length_limit(75),
    )
}

/// Builds the message. Every header value has control characters (CR/LF) removed; the subject is RFC 2047
/// encoded by lettre when it is not ASCII.
pub fn compose(parts: &RenderedDigest, envelope: &Envelope) -> Result<Message, MailError> {
    let to_address = envelope
        .to
        .as_str()
        .parse::<lettre::Address>()
        .map_err(|e| MailError::Mailbox {
            field: "To",
            value: envelope.to.to_string(),
            reason: e.to_string(),
        })?;
    let name = shortened(&envelope.to_name, NAME_CHARS);
    let to = Mailbox::new((!name.is_empty()).then_some(name), to_address);
    let mut builder = Message::builder()
        .from(envelope.from.clone())
        .to(to)
        .subject(shortened(&parts.subject, SUBJECT_CHARS))
        .date(SystemTime::from(envelope.date))
        .message_id(Some(single_line(&envelope.message_id)))
        .raw_header(raw("List-Id", envelope.list_id.clone()))
        .raw_header(raw(
            "List-Unsubscribe",
            format!("<{}>", envelope.unsubscribe_url),
        ))
        .raw_header(raw(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".into(),
        ));
    if let Some(reply_to) = &envelope.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let boundary = {
        let hash = Sha256::digest(envelope.message_id.as_bytes());
        format!("tidings-{}", hex::encode(&hash[..12]))
    };
    let body = MultiPart::alternative()
        .boundary(boundary)
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(quoted_printable_body(&parts.text)),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(quoted_printable_body(&parts.html)),
        );
    builder.multipart(body).map_err(|e| MailError::Build {
        to: envelope.to.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            from: "Blog <news@blog.example.com>".parse().unwrap(),
            reply_to: Some("editor@blog.example.com".parse().unwrap()),
            to: EmailAddress::parse("ada@example.com").unwrap(),
            to_name: "Ada\r\nBcc: evil@example.net".into(),
            date: DateTime::parse_from_rfc3339("2026-11-30T08:00:00+01:00").unwrap(),
            message_id: "<weekly.x@blog.example.com>".into(),
            list_id: "\"Blog weekly\" <weekly.blog.example.com>".into(),
            unsubscribe_url: "https://blog.example.com/unsubscribe?t=1".into(),
        }
    }

    fn parts(subject: &str) -> RenderedDigest {
        RenderedDigest {
            subject: subject.into(),
            text: Part::whole("text".into()),
            html: Part::whole("<p>html</p>".into()),
        }
    }

    fn headers(message: &Message) -> String {
        let bytes = message.formatted();
        let text = String::from_utf8_lossy(&bytes);
        text.split("\r\n\r\n").next().unwrap().to_string()
    }

    #[test]
    fn cr_lf_cannot_inject_a_header() {
        let message = compose(&parts("Hi\r\nBcc: victim@example.net"), &envelope()).unwrap();
        let head = headers(&message);
        assert!(!head.lines().any(|l| l.starts_with("Bcc:")), "{head}");
    }

    #[test]
    fn list_headers_and_message_id_are_set() {
        let head = headers(&compose(&parts("Hello"), &envelope()).unwrap());
        for expected in [
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "Message-ID: <weekly.x@blog.example.com>",
            "List-Id: \"Blog weekly\" <weekly.blog.example.com>",
            "Reply-To: editor@blog.example.com",
        ] {
            assert!(head.contains(expected), "{expected} missing from\n{head}");
        }
        assert!(
            head.lines()
                .any(|l| l == "List-Unsubscribe: <https://blog.example.com/unsubscribe?t=1>"),
            "one https URL and no mailto:\n{head}"
        );
    }

    #[test]
    fn a_non_ascii_subject_is_encoded() {
        let head = headers(&compose(&parts("Café ☕"), &envelope()).unwrap());
        assert!(head.contains("Subject: =?utf-8?"), "{head}");
    }

    #[test]
    fn message_ids_are_in_the_sender_domain_and_stable() {
        let tick = DateTime::parse_from_rfc3339("2026-11-30T08:00:00+01:00").unwrap();
        let ada = EmailAddress::parse("ada@example.com").unwrap();
        let id = message_id("weekly", tick, &ada, "blog.example.com");
        assert!(
            id.starts_with("<weekly.20261130T070000Z.") && id.ends_with("@blog.example.com>"),
            "{id}"
        );
        assert_eq!(id, message_id("weekly", tick, &ada, "blog.example.com"));
        let bob = EmailAddress::parse("bob@example.com").unwrap();
        assert_ne!(id, message_id("weekly", tick, &bob, "blog.example.com"));
    }

    #[test]
    fn no_header_line_is_longer_than_998_octets_whatever_the_title_or_name() {
        let long_title = "Ünïcödé title with many words ".repeat(100);
        let mut env = envelope();
        env.to_name = "Reader With An Extraordinarily Long Name ".repeat(50);
        let message = compose(&parts(&long_title), &env).unwrap();
        let bytes = message.formatted();
        for line in bytes.split(|b| *b == b'\n') {
            assert!(
                line.len() <= 998,
                "{} octets: {}",
                line.len(),
                String::from_utf8_lossy(line)
            );
        }
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let subject = parsed.subject().unwrap();
        assert!(subject.ends_with('…'), "{subject}");
        assert!(subject.chars().count() <= SUBJECT_CHARS, "{subject}");
        assert!(
            subject.starts_with("Ünïcödé title with many words"),
            "{subject}"
        );
    }

    #[test]
    fn shortening_cuts_at_a_word_and_keeps_short_text_whole() {
        assert_eq!(shortened("short", 10), "short");
        assert_eq!(shortened("one two three four", 12), "one two…");
        assert_eq!(shortened("abcdefghijklmnop", 5), "abcd…");
    }
}
