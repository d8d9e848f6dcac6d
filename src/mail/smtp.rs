//! [`SmtpRelay`]: messages to an SMTP server (a relay such as Postmark, SES or a local Postfix) over pooled,
//! reused connections, TLS unless told otherwise, and [`Sendmail`]: messages to the local `sendmail` program.
//!
//! The SMTP server's answer is mapped to a [`DeliveryOutcome`]: 2xx sent; 4xx, a dropped connection or a timeout
//! deferred; a 5xx about the message or recipient failed; a server that cannot be reached, a TLS failure or a
//! refused login unavailable (no message is at fault, so the run stops instead of failing everyone).

use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSendmailTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::Url;

use super::MailError;
use super::transport::{DeliveryOutcome, Transport};

/// How to reach the SMTP server, from `[mail]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// lettre's URL form: `smtps://user@host:465` (implicit TLS), `smtp://user@host:587?tls=required`
    /// (STARTTLS); a password in it is refused (it comes from `TIDINGS_MAIL_PASSWORD`).
    pub url: Url,
    /// Plain `smtp://` without TLS to a host that is not loopback.
    pub allow_plaintext: bool,
    /// Parallel connections.
    pub concurrency: usize,
    /// For connecting and for each reply.
    pub timeout: Duration,
}

impl SmtpSettings {
    /// Checks the URL against the rules above; `Err` says what to change.
    pub fn check_url(url: &Url, allow_plaintext: bool) -> Result<(), String> {
        if !matches!(url.scheme(), "smtp" | "smtps") {
            return Err(format!(
                "\"{}\" is not an SMTP URL; use smtps://user@host:465 or smtp://user@host:587?tls=required",
                url.scheme()
            ));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err("names no host; use smtps://user@host:465".into());
        };
        if url.password().is_some() {
            return Err(
                "holds a password; remove it from the URL and set TIDINGS_MAIL_PASSWORD instead"
                    .into(),
            );
        }
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        match tls.as_deref() {
            None | Some("required") | Some("opportunistic") => {}
            Some(other) => {
                return Err(format!(
                    "tls={other} is not a TLS mode; use tls=required (STARTTLS) or smtps:// (implicit TLS)"
                ));
            }
        }
        let plaintext = url.scheme() == "smtp" && tls.as_deref() != Some("required");
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if plaintext && !loopback && !allow_plaintext {
            return Err(format!(
                "sends mail to {host} without TLS; use smtps:// or ?tls=required, or set allow_plaintext = true \
                 if the network is trusted"
            ));
        }
        Ok(())
    }
}

/// An SMTP relay with a pool of reused connections.
pub struct SmtpRelay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpRelay {
    /// Builds the pooled transport; `password` is `TIDINGS_MAIL_PASSWORD`, used with the URL's user name.
    pub fn new(settings: &SmtpSettings, password: Option<&str>) -> Result<SmtpRelay, MailError> {
        SmtpSettings::check_url(&settings.url, settings.allow_plaintext).map_err(|reason| {
            MailError::Transport {
                what: "[mail] smtp_url",
                reason,
            }
        })?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.url.as_str())
            .map_err(|e| MailError::Transport {
                what: "[mail] smtp_url",
                reason: e.to_string(),
            })?
            .timeout(Some(settings.timeout))
            .pool_config(PoolConfig::new().max_size(settings.concurrency.max(1) as u32));
        let user = percent_decode(settings.url.username());
        match (user.is_empty(), password.filter(|p| !p.is_empty())) {
            (false, Some(password)) => {
                builder = builder.credentials(Credentials::new(user, password.to_string()));
            }
            (false, None) => {
                return Err(MailError::Transport {
                    what: "TIDINGS_MAIL_PASSWORD",
                    reason: format!(
                        "is not set, and [mail] smtp_url logs in as \"{user}\"; set it to the SMTP password"
                    ),
                });
            }
            (true, _) => {}
        }
        Ok(SmtpRelay {
            transport: builder.build(),
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("u={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl Transport for SmtpRelay {
    async fn send(&self, message: &Message, _message_id: &str) -> DeliveryOutcome {
        match self
            .transport
            .send_raw(message.envelope(), &message.formatted())
            .await
        {
            Ok(response) => DeliveryOutcome::Sent {
                reply: format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ),
            },
            Err(e) => classify(&e),
        }
    }
}

/// Reply codes that refuse the session (authentication), not one message.
const SESSION_REFUSALS: [u16; 4] = [530, 534, 535, 538];

/// Maps a lettre SMTP error to what the ledger records.
fn classify(e: &lettre::transport::smtp::Error) -> DeliveryOutcome {
    let reply = e.to_string();
    if let Some(code) = e.status() {
        let code = u16::from(code);
        return if e.is_permanent() && SESSION_REFUSALS.contains(&code) {
            DeliveryOutcome::Unavailable { reason: reply }
        } else if e.is_permanent() {
            DeliveryOutcome::Failed { reply }
        } else {
            DeliveryOutcome::Deferred { reply }
        };
    }
    if e.is_tls() || cannot_connect(e) {
        return DeliveryOutcome::Unavailable { reason: reply };
    }
    DeliveryOutcome::Deferred { reply }
}

/// Whether an I/O error under `e` says the server could not be reached at all.
fn cannot_connect(e: &lettre::transport::smtp::Error) -> bool {
    use std::error::Error as _;
    use std::io::ErrorKind;
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::NotFound
            );
        }
        source = err.source();
    }
    false
}

/// The local `sendmail` program (`[mail] sendmail_command`). Its exit status does not say transient from
/// permanent, so a failure is deferred (and retried up to `max_attempts`), never recorded as final.
pub struct Sendmail {
    transport: AsyncSendmailTransport<Tokio1Executor>,
}

impl Sendmail {
    pub fn new(command: &std::path::Path) -> Sendmail {
        Sendmail {
            transport: AsyncSendmailTransport::new_with_command(command.as_os_str()),
        }
    }
}

#[async_trait::async_trait]
impl Transport for Sendmail {
    async fn send(&self, message: &Message, _message_id: &str) -> DeliveryOutcome {
        match self
            .transport
            .send_raw(message.envelope(), &message.formatted())
            .await
        {
            Ok(()) => DeliveryOutcome::Sent {
                reply: "handed to sendmail".into(),
            },
            Err(e) => DeliveryOutcome::Deferred {
                reply: format!("sendmail: {e}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, allow_plaintext: bool) -> Result<(), String> {
        SmtpSettings::check_url(&Url::parse(url).unwrap(), allow_plaintext)
    }

    #[test]
    fn tls_urls_and_loopback_plaintext_are_accepted() {
        for url in [
            "smtps://user@smtp.example.com:465",
            "smtp://user@smtp.example.com:587?tls=required",
            "smtp://127.0.0.1:2525",
            "smtp://localhost:25",
            "smtp://[::1]:25",
        ] {
            assert_eq!(check(url, false), Ok(()), "{url}");
        }
    }

    #[test]
    fn plaintext_to_another_host_needs_allow_plaintext() {
        let err = check("smtp://user@smtp.example.com:587", false).unwrap_err();
        assert!(
            err.contains("without TLS") && err.contains("allow_plaintext"),
            "{err}"
        );
        assert_eq!(check("smtp://user@smtp.example.com:587", true), Ok(()));
        let err = check("smtp://mail.example.com?tls=opportunistic", false).unwrap_err();
        assert!(
            err.contains("without TLS"),
            "opportunistic TLS can be stripped: {err}"
        );
    }

    #[test]
    fn a_password_in_the_url_is_refused() {
        let err = check("smtps://user:hunter2@smtp.example.com", false).unwrap_err();
        assert!(err.contains("TIDINGS_MAIL_PASSWORD"), "{err}");
    }

    #[test]
    fn other_schemes_and_tls_modes_are_refused() {
        assert!(check("http://smtp.example.com", false).is_err());
        assert!(check("smtp://smtp.example.com?tls=maybe", false).is_err());
    }

    #[test]
    fn a_user_without_a_password_is_a_clear_error() {
        let settings = SmtpSettings {
            url: Url::parse("smtps://news@smtp.example.com").unwrap(),
            allow_plaintext: false,
            concurrency: 1,
            timeout: Duration::from_secs(1),
        };
        let err = SmtpRelay::new(&settings, None).err().unwrap().to_string();
        assert!(
            err.contains("TIDINGS_MAIL_PASSWORD") && err.contains("news"),
            "{err}"
        );
    }
}
