//! [`SmtpRelay`]: messages to an SMTP server (a relay such as Postmark, SES or a local Postfix) over pooled,
//! reused connections, TLS unless told otherwise, and [`Sendmail`]: messages to the local `sendmail` program.
//!
//! The SMTP client is our own ([`session`] over [`protocol`]): lettre's client sends each message as four round
//! trips (MAIL, RCPT, DATA, the content), and with ESMTP PIPELINING (RFC 2920) one message takes two; round trips
//! bounded the rate of a digest's fan-out. lettre still builds and signs the messages.
//!
//! The SMTP server's answer is mapped to a [`DeliveryOutcome`]: 2xx sent; 4xx, a dropped connection or a timeout
//! deferred; a 5xx about the message or recipient failed; a server that cannot be reached, a TLS failure or a
//! refused login unavailable (no message is at fault, so the run stops instead of failing everyone).

mod protocol;
mod session;

use std::time::Duration;

use std::sync::{Arc, Mutex};

use lettre::{AsyncSendmailTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Semaphore;
use url::Url;

use super::MailError;
use super::transport::{DeliveryOutcome, Transport};
use protocol::Reply;
use session::{Failure, Io, Session, describe};

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

/// How the connection is protected, from the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://…?tls=required`: STARTTLS, refused if the server does not offer it.
    StartTls,
    /// `smtp://…?tls=opportunistic`: STARTTLS when offered.
    Opportunistic,
    /// Plain `smtp://` (loopback, or `allow_plaintext`).
    Plain,
}

/// An SMTP relay with a pool of reused connections (at most `concurrency` open at once), each a TCP socket with
/// `TCP_NODELAY` (a message's commands and content are each one write; with Nagle on, the write after a reply
/// would wait for the server's 40 ms delayed ACK).
pub struct SmtpRelay {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    timeout: Duration,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    idle: Mutex<Vec<Connection>>,
    slots: Semaphore,
}

/// A session over plain TCP or TLS.
type Connection = Session<Box<dyn Io>>;

/// The login: the URL's user name and `TIDINGS_MAIL_PASSWORD`.
struct Credentials {
    user: String,
    password: String,
}

/// One message's envelope and bytes, shared with the task that sends it.
struct Job {
    from: Option<String>,
    to: Vec<String>,
    bytes: Vec<u8>,
}

impl SmtpRelay {
    /// Checks the settings; `password` is `TIDINGS_MAIL_PASSWORD`, used with the URL's user name. Connects only
    /// when the first message is sent.
    pub fn new(settings: &SmtpSettings, password: Option<&str>) -> Result<SmtpRelay, MailError> {
        let url = &settings.url;
        SmtpSettings::check_url(url, settings.allow_plaintext).map_err(|reason| {
            MailError::Transport {
                what: "[mail] smtp_url",
                reason,
            }
        })?;
        let tls_mode = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let security = match (url.scheme(), tls_mode.as_deref()) {
            ("smtps", _) => Security::Implicit,
            (_, Some("required")) => Security::StartTls,
            (_, Some("opportunistic")) => Security::Opportunistic,
            _ => Security::Plain,
        };
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_string();
        let port = url.port().unwrap_or(match security {
            Security::Implicit => 465,
            _ => 587,
        });
        let user = percent_decode(url.username());
        let credentials = match (user.is_empty(), password.filter(|p| !p.is_empty())) {
            (false, Some(password)) => Some(Credentials {
                user,
                password: password.to_string(),
            }),
            (false, None) => {
                return Err(MailError::Transport {
                    what: "TIDINGS_MAIL_PASSWORD",
                    reason: format!(
                        "is not set, and [mail] smtp_url logs in as \"{user}\"; set it to the SMTP password"
                    ),
                });
            }
            (true, _) => None,
        };
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| MailError::Transport {
            what: "TLS",
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(SmtpRelay {
            host,
            port,
            security,
            credentials,
            timeout: settings.timeout,
            tls: Arc::new(tls),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(settings.concurrency.max(1)),
        })
    }

    /// A new session: TCP (no Nagle), TLS as configured, EHLO, login. Failing to reach the server, to secure the
    /// connection or to log in is `Unavailable`: no message is at fault.
    async fn connect(&self) -> Result<Connection, DeliveryOutcome> {
        let unreachable = |what: &str, e: &dyn std::fmt::Display| DeliveryOutcome::Unavailable {
            reason: format!("{what} {}:{}: {e}", self.host, self.port),
        };
        let tcp = tokio::time::timeout(
            self.timeout,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| unreachable("no answer from", &"connection timed out"))?
        .map_err(|e| unreachable("cannot connect to", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| unreachable("cannot set up the connection to", &e))?;
        let hello = hello_name(&tcp);
        let mut session = match self.security {
            Security::Implicit => {
                let tls = self
                    .handshake(tcp)
                    .await
                    .map_err(|e| unreachable("TLS failed with", &e))?;
                let mut session = Session::new(Box::new(tls) as Box<dyn Io>, self.timeout);
                greet(&mut session, &hello, &unreachable).await?;
                session
            }
            _ => {
                let mut plain = Session::new(tcp, self.timeout);
                greet(&mut plain, &hello, &unreachable).await?;
                let wants_tls = self.security == Security::StartTls
                    || (self.security == Security::Opportunistic && plain.extensions().starttls);
                if wants_tls {
                    let tcp = plain
                        .starttls()
                        .await
                        .map_err(|e| unreachable("STARTTLS failed with", &e))?;
                    let tls = self
                        .handshake(tcp)
                        .await
                        .map_err(|e| unreachable("TLS failed with", &e))?;
                    // No greeting after STARTTLS; the extensions are asked for again (RFC 3207 §4.2).
                    let mut session = Session::new(Box::new(tls) as Box<dyn Io>, self.timeout);
                    session
                        .ehlo(&hello)
                        .await
                        .map_err(|e| unreachable("EHLO over TLS refused by", &e))?;
                    session
                } else {
                    plain.boxed()
                }
            }
        };
        if let Some(credentials) = &self.credentials {
            session
                .auth(&credentials.user, &credentials.password)
                .await
                .map_err(|e| unreachable("login refused by", &e))?;
        }
        Ok(session)
    }

    /// The TLS handshake over `tcp`, checking the server's certificate for the URL's host.
    async fn handshake(
        &self,
        tcp: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| format!("cannot name {}: {e}", self.host))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
        match tokio::time::timeout(self.timeout, connector.connect(name, tcp)).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no handshake within {:?}", self.timeout)),
        }
    }

    fn put_back(&self, conn: Connection) {
        if !conn.is_broken() {
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(conn);
        }
    }

    /// One message's transaction on `conn`, as a task of its own, so that the protocol work (and TLS) runs on
    /// any of the runtime's threads, not on the one that drives every connection of a send.
    async fn exchange(
        &self,
        mut conn: Connection,
        job: &Arc<Job>,
    ) -> Result<(Connection, Result<Reply, Failure>), DeliveryOutcome> {
        let job = Arc::clone(job);
        let task = tokio::spawn(async move {
            let to: Vec<&str> = job.to.iter().map(String::as_str).collect();
            let result = conn.send(job.from.as_deref(), &to, &job.bytes).await;
            (conn, result)
        });
        match task.await {
            Ok(done) => Ok(done),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(DeliveryOutcome::Deferred {
                reply: "the exchange was cancelled: tidings is stopping".into(),
            }),
        }
    }
}

/// The server's greeting and our EHLO, the opening of every session (plain or TLS from the first byte); a
/// failure is `Unavailable`, as `unreachable` words it.
async fn greet<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    session: &mut Session<S>,
    hello: &str,
    unreachable: &impl Fn(&str, &dyn std::fmt::Display) -> DeliveryOutcome,
) -> Result<(), DeliveryOutcome> {
    session
        .greeting()
        .await
        .map_err(|e| unreachable("no SMTP greeting from", &e))?;
    session
        .ehlo(hello)
        .await
        .map_err(|e| unreachable("EHLO refused by", &e))
}

/// The EHLO name: the address literal of our end of the connection (`[192.0.2.1]`, `[IPv6:…]`), always valid by
/// RFC 5321 §4.1.4, where a bare host name (`vm`) is not a domain.
fn hello_name(tcp: &tokio::net::TcpStream) -> String {
    match tcp.local_addr().map(|a| a.ip()) {
        Ok(std::net::IpAddr::V4(ip)) => format!("[{ip}]"),
        Ok(std::net::IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
        Err(_) => "[127.0.0.1]".into(),
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
        let Ok(_slot) = self.slots.acquire().await else {
            return DeliveryOutcome::Unavailable {
                reason: "the SMTP transport was shut down".into(),
            };
        };
        let envelope = message.envelope();
        let job = Arc::new(Job {
            from: envelope.from().map(ToString::to_string),
            to: envelope.to().iter().map(ToString::to_string).collect(),
            bytes: message.formatted(),
        });
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let was_reused = reused.is_some();
        let conn = match reused {
            Some(conn) => conn,
            None => match self.connect().await {
                Ok(conn) => conn,
                Err(outcome) => return outcome,
            },
        };
        let (mut conn, mut result) = match self.exchange(conn, &job).await {
            Ok(exchanged) => exchanged,
            Err(outcome) => return outcome,
        };
        // A pooled connection the server closed while it was idle fails before any reply: once, on a fresh one.
        if was_reused
            && matches!(
                result,
                Err(Failure::Lost {
                    answered: false,
                    ..
                })
            )
        {
            let fresh = match self.connect().await {
                Ok(conn) => conn,
                Err(outcome) => return outcome,
            };
            (conn, result) = match self.exchange(fresh, &job).await {
                Ok(exchanged) => exchanged,
                Err(outcome) => return outcome,
            };
        }
        self.put_back(conn);
        classify(result)
    }
}

/// Reply codes that refuse the session (authentication), not one message.
const SESSION_REFUSALS: [u16; 4] = [530, 534, 535, 538];

/// Maps a transaction's result to what the ledger records: a reply code says; anything else (a dropped
/// connection, a broken TLS record, a timeout) is worth another try.
fn classify(result: Result<Reply, Failure>) -> DeliveryOutcome {
    match result {
        Ok(reply) => DeliveryOutcome::Sent {
            reply: reply.to_string(),
        },
        Err(Failure::Refused(reply)) if reply.is_permanent() => {
            if SESSION_REFUSALS.contains(&reply.code) {
                DeliveryOutcome::Unavailable {
                    reason: describe(&reply),
                }
            } else {
                DeliveryOutcome::Failed {
                    reply: describe(&reply),
                }
            }
        }
        Err(failure) => DeliveryOutcome::Deferred {
            reply: failure.to_string(),
        },
    }
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
