//! [`SmtpRelay`]: messages to an SMTP server (a relay such as Postmark, SES or a local Postfix) over pooled,
//! reused connections, TLS unless told otherwise, and [`Sendmail`]: messages to the local `sendmail` program.
//!
//! The SMTP server's answer is mapped to a [`DeliveryOutcome`]: 2xx sent; 4xx, a dropped connection or a timeout
//! deferred; a 5xx about the message or recipient failed; a server that cannot be reached, a TLS failure or a
//! refused login unavailable (no message is at fault, so the run stops instead of failing everyone).

use std::time::Duration;

use std::sync::{Arc, Mutex};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSendmailTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Semaphore;
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

/// An SMTP relay with a pool of reused connections (at most `concurrency` open at once).
///
/// Connections are lettre's [`AsyncSmtpConnection`] over a TCP socket tidings opens itself with `TCP_NODELAY`:
/// lettre writes a message's body and its final `.` separately, and with Nagle on (lettre 0.11.23's own socket)
/// each message then waits for the server's 40 ms delayed ACK.
pub struct SmtpRelay {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    slots: Semaphore,
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
            (false, Some(password)) => Some(Credentials::new(user, password.to_string())),
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
            hello: ClientId::default(),
            tls: Arc::new(tls),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(settings.concurrency.max(1)),
        })
    }

    /// A new session: TCP (no Nagle), TLS as configured, EHLO, login. Failing to reach the server, to secure the
    /// connection or to log in is `Unavailable`: no message is at fault.
    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryOutcome> {
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
        let connected = match self.security {
            Security::Implicit => {
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| unreachable("TLS cannot name", &e))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| unreachable("TLS failed with", &e))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(ImplicitTls(tls)), &self.hello)
                    .await
            }
            _ => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await,
        };
        let mut conn = connected.map_err(|e| unreachable("no SMTP greeting from", &e))?;
        let wants_tls = matches!(self.security, Security::StartTls)
            || (self.security == Security::Opportunistic && conn.can_starttls());
        if wants_tls {
            let params = TlsParameters::new(self.host.clone())
                .map_err(|e| unreachable("TLS cannot name", &e))?;
            conn.starttls(params, &self.hello)
                .await
                .map_err(|e| unreachable("STARTTLS failed with", &e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| unreachable("login refused by", &e))?;
        }
        Ok(conn)
    }

    fn put_back(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(conn);
        }
    }
}

/// A TLS stream from the first byte, handed to lettre as if it were the plain socket.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<tokio::net::TcpStream>);

impl lettre::transport::smtp::client::AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
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
        let bytes: Arc<[u8]> = message.formatted().into();
        let envelope = message.envelope().clone();
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
        let (mut conn, mut result) = match self.exchange(conn, &envelope, &bytes).await {
            Ok(exchanged) => exchanged,
            Err(outcome) => return outcome,
        };
        // A pooled connection the server closed while it was idle fails before any reply: once, on a fresh one.
        if was_reused && matches!(&result, Ok(Err(e)) if e.status().is_none()) {
            let fresh = match self.connect().await {
                Ok(conn) => conn,
                Err(outcome) => return outcome,
            };
            (conn, result) = match self.exchange(fresh, &envelope, &bytes).await {
                Ok(exchanged) => exchanged,
                Err(outcome) => return outcome,
            };
        }
        match result {
            Ok(Ok(response)) => {
                self.put_back(conn);
                DeliveryOutcome::Sent {
                    reply: format!(
                        "{} {}",
                        response.code(),
                        response.message().collect::<Vec<_>>().join(" ")
                    ),
                }
            }
            Ok(Err(e)) => {
                self.put_back(conn);
                classify(&e)
            }
            Err(_) => DeliveryOutcome::Deferred {
                reply: format!("no answer from the server within {:?}", self.timeout * 4),
            },
        }
    }
}

impl SmtpRelay {
    /// One message's SMTP exchange on `conn`, as a task of its own: the protocol work (lettre writes the message
    /// a byte at a time while dot-stuffing it) then runs on any of the runtime's threads, not on the one that
    /// drives every connection of a send.
    async fn exchange(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &lettre::address::Envelope,
        bytes: &Arc<[u8]>,
    ) -> Result<(AsyncSmtpConnection, Exchanged), DeliveryOutcome> {
        let (envelope, bytes, limit) = (envelope.clone(), Arc::clone(bytes), self.timeout * 4);
        let task = tokio::spawn(async move {
            let result = tokio::time::timeout(limit, conn.send(&envelope, &bytes)).await;
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

/// What one exchange gave: the server's answer, a protocol error, or no answer in time.
type Exchanged = Result<
    Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
    tokio::time::error::Elapsed,
>;

/// Reply codes that refuse the session (authentication), not one message.
const SESSION_REFUSALS: [u16; 4] = [530, 534, 535, 538];

/// Maps a lettre SMTP error in an established session to what the ledger records: a reply code says; anything
/// else (a dropped connection, a broken TLS record) is worth another try.
fn classify(e: &lettre::transport::smtp::Error) -> DeliveryOutcome {
    let reply = e.to_string();
    match e.status().map(u16::from) {
        Some(code) if e.is_permanent() && SESSION_REFUSALS.contains(&code) => {
            DeliveryOutcome::Unavailable { reason: reply }
        }
        Some(_) if e.is_permanent() => DeliveryOutcome::Failed { reply },
        _ => DeliveryOutcome::Deferred { reply },
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
