//! One SMTP session over a connected stream (plain TCP, or TLS from the first byte or after STARTTLS): the
//! greeting, EHLO, STARTTLS, AUTH, and mail transactions, each step with the timeout it was given.
//!
//! Why it exists rather than lettre's connection: lettre sends MAIL, RCPT, DATA and the content each as its own
//! round trip. When the server offers PIPELINING (RFC 2920) a transaction here is two round trips: MAIL, RCPT
//! and DATA in one write, their replies read together, then the content in one write. Without PIPELINING the
//! commands go one at a time, as RFC 5321 requires. The protocol text lives in [`super::protocol`].

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::protocol::{
    Extensions, Reply, auth_login_line, auth_plain, data_content, parse_reply, transaction_commands,
};

/// A byte stream a session can run over, boxed so that plain and TLS sessions share one pool.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered, and not with what the step needed.
    Refused(Reply),
    /// The connection failed: closed, reset, or a reply that is not SMTP. `answered` says whether any reply to
    /// the transaction came first (if none did, the server cannot have taken the message).
    Lost { reason: String, answered: bool },
    /// No reply (or no room to write) within the session's timeout.
    TimedOut(Duration),
    /// The server lacks something the settings need (STARTTLS, an AUTH mechanism).
    Unsupported(String),
}

impl Failure {
    fn lost(reason: impl std::fmt::Display) -> Failure {
        Failure::Lost {
            reason: reason.to_string(),
            answered: false,
        }
    }
}

/// `permanent error (550): 5.1.1 <a@example.com>: no such user`: the words the ledger and the summary show.
pub fn describe(reply: &Reply) -> String {
    let kind = if reply.is_permanent() {
        "permanent"
    } else if reply.is_positive() {
        "unexpected"
    } else {
        "transient"
    };
    format!("{kind} error ({}): {}", reply.code, reply.text())
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(reply) => f.write_str(&describe(reply)),
            Failure::Lost { reason, .. } => write!(f, "connection lost: {reason}"),
            Failure::TimedOut(limit) => write!(f, "no answer from the server within {limit:?}"),
            Failure::Unsupported(what) => f.write_str(what),
        }
    }
}

/// A session: the stream, what was read but not yet parsed, and what the server offers.
pub struct Session<S> {
    stream: S,
    buf: Vec<u8>,
    timeout: Duration,
    ext: Extensions,
    broken: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub fn new(stream: S, timeout: Duration) -> Session<S> {
        Session {
            stream,
            buf: Vec::with_capacity(4096),
            timeout,
            ext: Extensions::default(),
            broken: false,
        }
    }

    /// What the last EHLO reply offered.
    pub fn extensions(&self) -> &Extensions {
        &self.ext
    }

    /// The connection cannot carry another transaction (lost, timed out, closed by a 421, or abandoned).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The server's `220` greeting.
    pub async fn greeting(&mut self) -> Result<Reply, Failure> {
        let reply = self.read_reply().await?;
        expect(reply, 220)
    }

    /// `EHLO name`, keeping the extensions the server names.
    pub async fn ehlo(&mut self, name: &str) -> Result<(), Failure> {
        let reply = self.command(format!("EHLO {name}\r\n").as_bytes()).await?;
        let reply = expect(reply, 250)?;
        self.ext = Extensions::parse(&reply);
        Ok(())
    }

    /// `STARTTLS`, then the stream to run the TLS handshake over. Bytes already sent after the server's `220`
    /// would be read as if they had come over TLS (a known injection attack), so they end the session.
    pub async fn starttls(mut self) -> Result<S, Failure> {
        if !self.ext.starttls {
            return Err(Failure::Unsupported(
                "the server does not offer STARTTLS, and [mail] smtp_url asks for tls=required"
                    .into(),
            ));
        }
        let reply = self.command(b"STARTTLS\r\n").await?;
        expect(reply, 220)?;
        if !self.buf.is_empty() {
            return Err(Failure::lost(
                "the server sent data before the TLS handshake",
            ));
        }
        Ok(self.stream)
    }

    /// Logs in with AUTH PLAIN when offered, else AUTH LOGIN.
    pub async fn auth(&mut self, user: &str, password: &str) -> Result<(), Failure> {
        let offers = |mechanism: &str| self.ext.auth.iter().any(|m| m == mechanism);
        let (plain, login) = (offers("PLAIN"), offers("LOGIN"));
        let reply = if plain {
            self.command(&auth_plain(user, password)).await?
        } else if login {
            expect(self.command(b"AUTH LOGIN\r\n").await?, 334)?;
            expect(self.command(&auth_login_line(user)).await?, 334)?;
            self.command(&auth_login_line(password)).await?
        } else {
            return Err(Failure::Unsupported(format!(
                "the server offers no login tidings can use (AUTH PLAIN or LOGIN; it offers {:?})",
                self.ext.auth
            )));
        };
        expect(reply, 235).map(drop)
    }

    /// One mail transaction: `message` (the whole message, headers and body) from `from` to every address in
    /// `to`. `Ok` is the server's acceptance. A refused envelope is reset (RSET) so the session can carry the
    /// next message; the content is sent only once every envelope command and DATA were accepted.
    pub async fn send(
        &mut self,
        from: Option<&str>,
        to: &[&str],
        message: &[u8],
    ) -> Result<Reply, Failure> {
        let eight_bit = !message.is_ascii();
        let commands = transaction_commands(from, to, message.len(), eight_bit, &self.ext);
        let mut answered = false;
        let result = self.transaction(&commands, message, &mut answered).await;
        result.map_err(|failure| match failure {
            Failure::Lost { reason, .. } => Failure::Lost { reason, answered },
            other => other,
        })
    }

    async fn transaction(
        &mut self,
        commands: &[Vec<u8>],
        message: &[u8],
        answered: &mut bool,
    ) -> Result<Reply, Failure> {
        let mut replies = Vec::with_capacity(commands.len());
        if self.ext.pipelining {
            // RFC 2920: MAIL, RCPT and DATA in one group (DATA ends a group), then every reply in order.
            self.write(&commands.concat()).await?;
            for _ in commands {
                replies.push(self.read_reply().await?);
                *answered = true;
            }
        } else {
            for command in commands {
                self.write(command).await?;
                let reply = self.read_reply().await?;
                *answered = true;
                let go_on = reply.is_positive();
                replies.push(reply);
                if !go_on {
                    break;
                }
            }
        }
        let envelope = commands.len() - 1;
        let refused = replies
            .iter()
            .take(envelope)
            .find(|r| !r.is_positive())
            .cloned();
        let data_accepted = replies.len() == commands.len() && replies[envelope].code == 354;
        match (refused, data_accepted) {
            (None, true) => {
                self.write(&data_content(message)).await?;
                let reply = self.read_reply().await?;
                if reply.is_positive() {
                    Ok(reply)
                } else {
                    Err(Failure::Refused(reply))
                }
            }
            (Some(refusal), true) => {
                // A server that took DATA after refusing a recipient: ending the data would deliver the message
                // to the recipients it did accept. Closing the connection abandons the transaction instead.
                self.broken = true;
                Err(Failure::Refused(refusal))
            }
            (refused, false) => {
                let refusal = refused
                    .or_else(|| replies.last().cloned())
                    .expect("a transaction reads at least one reply");
                self.reset(&refusal).await;
                Err(Failure::Refused(refusal))
            }
        }
    }

    /// RSET after a refused transaction, so the next one starts clean; a session that cannot is broken.
    async fn reset(&mut self, refusal: &Reply) {
        if self.broken || refusal.code == 421 {
            self.broken = true;
            return;
        }
        match self.command(b"RSET\r\n").await {
            Ok(reply) if reply.is_positive() => {}
            _ => self.broken = true,
        }
    }

    async fn command(&mut self, line: &[u8]) -> Result<Reply, Failure> {
        self.write(line).await?;
        self.read_reply().await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let written = tokio::time::timeout(self.timeout, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.fail(Failure::lost(e))),
            Err(_) => Err(self.fail(Failure::TimedOut(self.timeout))),
        }
    }

    /// The next reply, within the timeout. A `421` means the server is closing the connection.
    async fn read_reply(&mut self) -> Result<Reply, Failure> {
        let limit = self.timeout;
        let read = tokio::time::timeout(limit, async {
            loop {
                match parse_reply(&self.buf) {
                    Ok(Some((reply, used))) => {
                        self.buf.drain(..used);
                        return Ok(reply);
                    }
                    Ok(None) => {}
                    Err(malformed) => return Err(Failure::lost(malformed)),
                }
                self.buf.reserve(4096);
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) => return Err(Failure::lost("the server closed the connection")),
                    Ok(_) => {}
                    Err(e) => return Err(Failure::lost(e)),
                }
            }
        })
        .await;
        match read {
            Ok(Ok(reply)) => {
                if reply.code == 421 {
                    self.broken = true;
                }
                Ok(reply)
            }
            Ok(Err(failure)) => Err(self.fail(failure)),
            Err(_) => Err(self.fail(Failure::TimedOut(limit))),
        }
    }

    fn fail(&mut self, failure: Failure) -> Failure {
        self.broken = true;
        failure
    }
}

impl<S: Io + 'static> Session<S> {
    /// The same session over a boxed stream, for a pool that holds plain and TLS sessions alike.
    pub fn boxed(self) -> Session<Box<dyn Io>> {
        Session {
            stream: Box::new(self.stream),
            buf: self.buf,
            timeout: self.timeout,
            ext: self.ext,
            broken: self.broken,
        }
    }
}

fn expect(reply: Reply, code: u16) -> Result<Reply, Failure> {
    if reply.code == code {
        Ok(reply)
    } else {
        Err(Failure::Refused(reply))
    }
}

#[cfg(test)]
mod tests {
    //! The session against a scripted server on an in-memory pipe: the orders and faults a real server rarely
    //! gives on demand (DATA accepted after a refused recipient, a 421 mid-transaction). The real servers are
    //! in `tests/it/delivery.rs`.

    use super::*;
    use tokio::io::DuplexStream;

    const FROM: &str = "news@example.com";
    const TO: &str = "ada@example.com";
    const MESSAGE: &[u8] = b"Subject: hi\r\n\r\n.dot\r\nbody";

    /// The server's end: reads until a marker, says replies.
    struct Peer {
        io: DuplexStream,
        got: Vec<u8>,
    }

    impl Peer {
        /// Everything received up to and including `marker` (waiting for more as needed).
        async fn until(&mut self, marker: &str) -> String {
            loop {
                if let Some(at) = find(&self.got, marker.as_bytes()) {
                    let rest = self.got.split_off(at + marker.len());
                    return String::from_utf8(std::mem::replace(&mut self.got, rest)).unwrap();
                }
                let mut chunk = [0u8; 4096];
                let n = self.io.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the client closed the connection");
                self.got.extend_from_slice(&chunk[..n]);
            }
        }

        /// What one read brings (what the client wrote before waiting for a reply).
        async fn one_read(&mut self) -> String {
            assert!(self.got.is_empty());
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.unwrap();
            String::from_utf8_lossy(&chunk[..n]).into_owned()
        }

        async fn say(&mut self, text: &str) {
            self.io.write_all(text.as_bytes()).await.unwrap();
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    /// A session past EHLO, the server offering `extensions`.
    async fn past_ehlo(extensions: &str) -> (Session<DuplexStream>, Peer) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut peer = Peer {
            io: server,
            got: Vec::new(),
        };
        let mut session = Session::new(client, Duration::from_secs(5));
        peer.say("220 sink ESMTP\r\n").await;
        session.greeting().await.unwrap();
        let (done, said) = tokio::join!(session.ehlo("[127.0.0.1]"), async {
            peer.until("\r\n").await;
            peer.say(&format!("250-sink\r\n{extensions}250 8BITMIME\r\n"))
                .await;
        });
        done.unwrap();
        let () = said;
        (session, peer)
    }

    #[tokio::test]
    async fn with_pipelining_the_envelope_is_one_write_and_the_content_another() {
        let (mut session, mut peer) = past_ehlo("250-PIPELINING\r\n250-SIZE 1000000\r\n").await;
        let server = async {
            // No reply before DATA has arrived: a client waiting for MAIL's reply would time out here.
            let group = peer.until("DATA\r\n").await;
            peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
                .await;
            let content = peer.until("\r\n.\r\n").await;
            peer.say("250 2.0.0 queued as 1\r\n").await;
            (group, content)
        };
        let (result, (group, content)) =
            tokio::join!(session.send(Some(FROM), &[TO], MESSAGE), server);
        assert_eq!(result.unwrap().to_string(), "250 2.0.0 queued as 1");
        assert_eq!(
            group,
            format!(
                "MAIL FROM:<{FROM}> SIZE={}\r\nRCPT TO:<{TO}>\r\nDATA\r\n",
                MESSAGE.len()
            )
        );
        assert_eq!(content, "Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n");
        assert!(!session.is_broken());
    }

    #[tokio::test]
    async fn without_pipelining_each_command_waits_for_its_reply() {
        let (mut session, mut peer) = past_ehlo("").await;
        let server = async {
            let mut seen = Vec::new();
            for reply in ["250 Ok\r\n", "250 Ok\r\n", "354 go ahead\r\n"] {
                seen.push(peer.one_read().await);
                peer.say(reply).await;
            }
            peer.until("\r\n.\r\n").await;
            peer.say("250 Ok\r\n").await;
            seen
        };
        let (result, seen) = tokio::join!(session.send(Some(FROM), &[TO], MESSAGE), server);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            seen,
            [
                format!("MAIL FROM:<{FROM}>\r\n"),
                format!("RCPT TO:<{TO}>\r\n"),
                "DATA\r\n".to_string()
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_recipient_is_reset_and_the_session_carries_the_next_message() {
        let (mut session, mut peer) = past_ehlo("250-PIPELINING\r\n").await;
        let server = async {
            peer.until("DATA\r\n").await;
            peer.say("250 Ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n")
                .await;
            assert_eq!(peer.until("\r\n").await, "RSET\r\n");
            peer.say("250 Ok\r\n").await;
        };
        let (result, ()) = tokio::join!(session.send(Some(FROM), &[TO], MESSAGE), server);
        let Err(Failure::Refused(reply)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(reply.code, 550);
        assert_eq!(
            Failure::Refused(reply).to_string(),
            "permanent error (550): 5.1.1 no such user"
        );
        assert!(!session.is_broken());

        let server = async {
            peer.until("DATA\r\n").await;
            peer.say("250 Ok\r\n250 Ok\r\n354 go\r\n").await;
            peer.until("\r\n.\r\n").await;
            peer.say("250 Ok\r\n").await;
        };
        let (result, ()) = tokio::join!(session.send(Some(FROM), &[TO], MESSAGE), server);
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn data_accepted_after_a_refused_recipient_abandons_the_connection_without_the_content() {
        let (mut session, mut peer) = past_ehlo("250-PIPELINING\r\n").await;
        let server = async {
            peer.until("DATA\r\n").await;
            peer.say("250 Ok\r\n550 no such user\r\n354 go ahead anyway\r\n")
                .await;
        };
        let (result, ()) = tokio::join!(session.send(Some(FROM), &[TO], MESSAGE), server);
        assert!(
            matches!(&result, Err(Failure::Refused(r)) if r.code == 550),
            "{result:?}"
        );
        assert!(session.is_broken(), "not put back in the pool");
        drop(session);
        let mut rest = Vec::new();
        peer.io.read_to_end(&mut rest).await.unwrap();
        assert!(
            rest.is_empty() && peer.got.is_empty(),
            "nothing after DATA: {rest:?}"
        );
    }

    #[tokio::test]
    async fn a_421_ends_the_session_without_a_reset() {
        let (mut session, mut peer) = past_ehlo("250-PIPELINING\r\n").await;
        let server = async {
            peer.until("DATA\r\n").await;
            peer.say(
                "421 4.3.2 shutting down\r\n421 4.3.2 shutting down\r\n421 4.3.2 shutting down\r\n",
            )
            .await;
        };
        let (result, ()) = tokio::join!(session.send(Some(FROM), &[TO], MESSAGE), server);
        assert_eq!(
            result.unwrap_err().to_string(),
            "transient error (421): 4.3.2 shutting down"
        );
        assert!(session.is_broken());
    }

    #[tokio::test]
    async fn a_connection_closed_before_any_reply_says_nothing_was_answered() {
        let (mut session, peer) = past_ehlo("250-PIPELINING\r\n").await;
        drop(peer);
        let result = session.send(Some(FROM), &[TO], MESSAGE).await;
        assert!(
            matches!(
                &result,
                Err(Failure::Lost {
                    answered: false,
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(session.is_broken());
    }

    #[tokio::test]
    async fn a_connection_closed_after_the_content_was_answered_to_is_not_taken_for_a_stale_one() {
        let (mut session, mut peer) = past_ehlo("250-PIPELINING\r\n").await;
        let server = async {
            peer.until("DATA\r\n").await;
            peer.say("250 Ok\r\n250 Ok\r\n354 go\r\n").await;
            peer.until("\r\n.\r\n").await;
            drop(peer);
        };
        let (result, ()) = tokio::join!(session.send(Some(FROM), &[TO], MESSAGE), server);
        assert!(
            matches!(&result, Err(Failure::Lost { answered: true, .. })),
            "{result:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_does_not_answer_times_out() {
        let (mut session, _peer) = past_ehlo("").await;
        let result = session.send(Some(FROM), &[TO], MESSAGE).await;
        assert_eq!(result, Err(Failure::TimedOut(Duration::from_secs(5))));
        assert!(session.is_broken());
    }

    #[tokio::test]
    async fn login_uses_plain_when_offered_and_login_otherwise() {
        let (mut session, mut peer) = past_ehlo("250-AUTH LOGIN PLAIN\r\n").await;
        let server = async {
            let line = peer.until("\r\n").await;
            peer.say("235 2.7.0 Authentication successful\r\n").await;
            line
        };
        let (result, line) = tokio::join!(session.auth("user", "pass"), server);
        assert_eq!(result, Ok(()));
        assert_eq!(line, "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");

        let (mut session, mut peer) = past_ehlo("250-AUTH LOGIN\r\n").await;
        let server = async {
            let mut lines = Vec::new();
            for reply in [
                "334 VXNlcm5hbWU6\r\n",
                "334 UGFzc3dvcmQ6\r\n",
                "535 5.7.8 bad credentials\r\n",
            ] {
                lines.push(peer.until("\r\n").await);
                peer.say(reply).await;
            }
            lines
        };
        let (result, lines) = tokio::join!(session.auth("user", "pass"), server);
        assert!(
            matches!(&result, Err(Failure::Refused(r)) if r.code == 535),
            "{result:?}"
        );
        assert_eq!(lines, ["AUTH LOGIN\r\n", "dXNlcg==\r\n", "cGFzcw==\r\n"]);

        let (mut session, _peer) = past_ehlo("").await;
        assert!(matches!(
            session.auth("user", "pass").await,
            Err(Failure::Unsupported(_))
        ));
    }

    #[tokio::test]
    async fn starttls_is_refused_when_not_offered_and_hands_back_a_clean_stream_when_it_is() {
        let (session, _peer) = past_ehlo("").await;
        assert!(matches!(
            session.starttls().await,
            Err(Failure::Unsupported(_))
        ));

        let (session, mut peer) = past_ehlo("250-STARTTLS\r\n").await;
        let server = async {
            assert_eq!(peer.until("\r\n").await, "STARTTLS\r\n");
            peer.say("220 2.0.0 ready\r\n").await;
        };
        let (result, ()) = tokio::join!(session.starttls(), server);
        assert!(result.is_ok());

        // Bytes after the 220 would be taken as sent over TLS: refused.
        let (session, mut peer) = past_ehlo("250-STARTTLS\r\n").await;
        let server = async {
            peer.until("\r\n").await;
            peer.say("220 ready\r\n250 injected\r\n").await;
        };
        let (result, ()) = tokio::join!(session.starttls(), server);
        assert!(matches!(result, Err(Failure::Lost { .. })));
    }
}
