//! The SMTP client's text, with no I/O: replies parsed from the bytes a server sent (RFC 5321 §4.2, multi-line
//! replies included), the extensions an EHLO reply names, the commands of a mail transaction, the AUTH
//! exchanges, and a message made into DATA content (dot-stuffed, CRLF line ends, ending in `CRLF.CRLF`).
//!
//! [`super::session`] does the reading and writing; keeping the text here lets every edge case be a unit test.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The most a reply may take before it is called malformed: a server that sends endless lines without a final
/// one must not grow our buffer without bound.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// One reply: its three-digit code and the text of each line (without the code and separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx: done.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 5xx: refused for good.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The text of every line, joined by spaces.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
}

impl std::fmt::Display for Reply {
    /// `250 2.0.0 Ok: queued`, the form the ledger and the summary show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// The bytes at the start of a buffer are not a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server's reply is not SMTP: {0:?}")]
pub struct MalformedReply(pub String);

/// The first complete reply at the start of `buf` and how many bytes it took; `Ok(None)` when more bytes are
/// needed. Lines end in CRLF (a bare LF is accepted too: servers that send it exist and the code is still
/// unambiguous); every line but the last has `-` after the code, the last a space or nothing.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, MalformedReply> {
    let mut code = None;
    let mut lines = Vec::new();
    let mut at = 0;
    while let Some(end) = buf[at..].iter().position(|&b| b == b'\n') {
        let raw = &buf[at..at + end];
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        at += end + 1;
        let malformed = || MalformedReply(String::from_utf8_lossy(line).into_owned());
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            return Err(malformed());
        }
        let this: u16 = std::str::from_utf8(&line[..3])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)?;
        if !(200..600).contains(&this) || code.is_some_and(|c| c != this) {
            return Err(malformed());
        }
        code = Some(this);
        let last = match line.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(malformed()),
        };
        lines.push(String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned());
        if last {
            return Ok(Some((Reply { code: this, lines }, at)));
        }
    }
    if buf.len() > MAX_REPLY_BYTES {
        return Err(MalformedReply(format!(
            "{} bytes without the end of a reply",
            buf.len()
        )));
    }
    Ok(None)
}

/// What the server offers, from its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// RFC 2920: commands may be sent in groups, their replies read after.
    pub pipelining: bool,
    pub starttls: bool,
    /// RFC 6152: 8-bit content (declared with `BODY=8BITMIME`).
    pub eight_bit_mime: bool,
    /// RFC 1870: the server takes `SIZE=` on MAIL (and may refuse a message too big before it is sent).
    pub size: bool,
    /// The AUTH mechanisms offered, upper case.
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the EHLO reply: its first line is the server's name, each further line one keyword and its
    /// parameters (keywords are case-insensitive).
    pub fn parse(ehlo: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in ehlo.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "STARTTLS" => ext.starttls = true,
                "8BITMIME" => ext.eight_bit_mime = true,
                "SIZE" => ext.size = true,
                "AUTH" => {
                    for mechanism in words.map(|w| w.to_ascii_uppercase()) {
                        if !ext.auth.contains(&mechanism) {
                            ext.auth.push(mechanism);
                        }
                    }
                }
                _ => {}
            }
        }
        ext
    }
}

/// The commands of one mail transaction, `MAIL`, one `RCPT` per recipient, then `DATA`, each a line. `SIZE=`
/// when the server takes it, `BODY=8BITMIME` when the content has 8-bit bytes and the server takes them.
pub fn transaction_commands(
    from: Option<&str>,
    to: &[&str],
    content_len: usize,
    eight_bit: bool,
    ext: &Extensions,
) -> Vec<Vec<u8>> {
    let mut mail = format!("MAIL FROM:<{}>", from.unwrap_or_default());
    if ext.size {
        mail.push_str(&format!(" SIZE={content_len}"));
    }
    if eight_bit && ext.eight_bit_mime {
        mail.push_str(" BODY=8BITMIME");
    }
    mail.push_str("\r\n");
    let mut commands = vec![mail.into_bytes()];
    commands.extend(
        to.iter()
            .map(|rcpt| format!("RCPT TO:<{rcpt}>\r\n").into_bytes()),
    );
    commands.push(b"DATA\r\n".to_vec());
    commands
}

/// A message as DATA content: every line ending made CRLF (a bare LF or CR could otherwise end the data early
/// on a server that reads them as line ends), a `.` doubled at the start of a line, a final CRLF added when the
/// message lacks one, then the `.` line that ends the data.
pub fn data_content(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut rest = message;
    // Line by line, each copied whole: this runs for every message of a fan-out.
    loop {
        if rest.first() == Some(&b'.') {
            out.push(b'.');
        }
        match memchr::memchr2(b'\r', b'\n', rest) {
            Some(end) => {
                out.extend_from_slice(&rest[..end]);
                out.extend_from_slice(b"\r\n");
                // CRLF is one line end, not two.
                let ending = if rest[end..].starts_with(b"\r\n") {
                    2
                } else {
                    1
                };
                rest = &rest[end + ending..];
                if rest.is_empty() {
                    break;
                }
            }
            None => {
                if !rest.is_empty() {
                    out.extend_from_slice(rest);
                    out.extend_from_slice(b"\r\n");
                }
                break;
            }
        }
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// `AUTH PLAIN` with the initial response (RFC 4616): one exchange.
pub fn auth_plain(user: &str, password: &str) -> Vec<u8> {
    let token = STANDARD.encode(format!("\0{user}\0{password}"));
    format!("AUTH PLAIN {token}\r\n").into_bytes()
}

/// A line of the `AUTH LOGIN` exchange: the user name or the password, base64.
pub fn auth_login_line(value: &str) -> Vec<u8> {
    format!("{}\r\n", STANDARD.encode(value)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> Result<Option<(Reply, usize)>, MalformedReply> {
        parse_reply(text.as_bytes())
    }

    #[test]
    fn a_one_line_reply_is_parsed_with_its_length() {
        let (r, used) = reply("250 2.1.0 Ok\r\n354 go on\r\n").unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.lines, ["2.1.0 Ok"]);
        assert_eq!(used, 14, "only the first reply is taken");
        assert_eq!(r.to_string(), "250 2.1.0 Ok");
    }

    #[test]
    fn a_multi_line_reply_ends_at_the_line_with_a_space() {
        let text = "250-mail.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n";
        let (r, used) = reply(text).unwrap().unwrap();
        assert_eq!(r.lines, ["mail.example.com", "PIPELINING", "SIZE 1000"]);
        assert_eq!(used, text.len());
    }

    #[test]
    fn an_incomplete_reply_asks_for_more() {
        for partial in ["", "25", "250 Ok", "250-first\r\n", "250-first\r\n250 la"] {
            assert_eq!(reply(partial), Ok(None), "{partial:?}");
        }
    }

    #[test]
    fn a_code_alone_and_bare_line_feeds_are_accepted() {
        let (r, _) = reply("250\r\n").unwrap().unwrap();
        assert_eq!((r.code, r.text()), (250, String::new()));
        let (r, used) = reply("221-bye\n221 now\n").unwrap().unwrap();
        assert_eq!((r.code, used), (221, 16));
    }

    #[test]
    fn text_that_is_not_a_reply_is_malformed() {
        for bad in [
            "hello\r\n",
            "25x Ok\r\n",
            "250_Ok\r\n",
            "250-a\r\n251 b\r\n",
            "099 too low\r\n",
            "\r\n",
        ] {
            assert!(reply(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn endless_lines_without_a_last_one_are_malformed() {
        let flood = "250-x\r\n".repeat(MAX_REPLY_BYTES / 7 + 1);
        assert!(reply(&flood).is_err());
    }

    #[test]
    fn reply_classes_are_told_apart() {
        let code = |code| Reply {
            code,
            lines: vec![],
        };
        assert!(code(250).is_positive() && !code(250).is_permanent());
        assert!(!code(354).is_positive());
        assert!(!code(451).is_positive() && !code(451).is_permanent());
        assert!(code(550).is_permanent());
    }

    #[test]
    fn ehlo_extensions_are_read_case_insensitively() {
        let (r, _) = reply(
            "250-sink.example.com Hello\r\n250-pipelining\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n\
             250-STARTTLS\r\n250-AUTH PLAIN login CRAM-MD5\r\n250-AUTH=PLAIN\r\n250 ENHANCEDSTATUSCODES\r\n",
        )
        .unwrap()
        .unwrap();
        let ext = Extensions::parse(&r);
        assert!(ext.pipelining && ext.size && ext.eight_bit_mime && ext.starttls);
        assert_eq!(ext.auth, ["PLAIN", "LOGIN", "CRAM-MD5"]);
    }

    #[test]
    fn the_server_name_line_is_not_an_extension() {
        let (r, _) = reply("250-PIPELINING\r\n250 HELP\r\n").unwrap().unwrap();
        assert_eq!(Extensions::parse(&r), Extensions::default());
    }

    #[test]
    fn transaction_commands_carry_size_and_body_only_when_offered() {
        let plain = Extensions::default();
        let commands =
            transaction_commands(Some("a@example.com"), &["b@example.com"], 10, true, &plain);
        assert_eq!(
            commands,
            [
                b"MAIL FROM:<a@example.com>\r\n".to_vec(),
                b"RCPT TO:<b@example.com>\r\n".to_vec(),
                b"DATA\r\n".to_vec()
            ]
        );
        let rich = Extensions {
            size: true,
            eight_bit_mime: true,
            ..Extensions::default()
        };
        let mail = &transaction_commands(None, &["b@example.com"], 1234, true, &rich)[0];
        assert_eq!(mail, b"MAIL FROM:<> SIZE=1234 BODY=8BITMIME\r\n");
        let mail = &transaction_commands(None, &["b@example.com"], 1234, false, &rich)[0];
        assert_eq!(mail, b"MAIL FROM:<> SIZE=1234\r\n");
    }

    #[test]
    fn a_line_starting_with_a_dot_gets_a_second_dot() {
        assert_eq!(
            data_content(b".hidden\r\nmid.dle\r\n.\r\n..two\r\n"),
            b"..hidden\r\nmid.dle\r\n..\r\n...two\r\n.\r\n"
        );
    }

    #[test]
    fn a_message_without_a_final_line_end_still_ends_in_crlf_dot_crlf() {
        assert_eq!(
            data_content(b"Subject: x\r\n\r\nbody"),
            b"Subject: x\r\n\r\nbody\r\n.\r\n"
        );
        assert_eq!(data_content(b"body\r\n"), b"body\r\n.\r\n");
        assert_eq!(data_content(b".last"), b"..last\r\n.\r\n");
        assert_eq!(data_content(b""), b".\r\n");
    }

    #[test]
    fn bare_line_feeds_and_carriage_returns_become_crlf_so_a_lone_dot_cannot_end_the_data() {
        // "\n.\n" is the SMTP smuggling pattern: on a lenient server it would end the data there.
        assert_eq!(
            data_content(b"a\n.\nb\rc\r\n"),
            b"a\r\n..\r\nb\r\nc\r\n.\r\n"
        );
    }

    proptest::proptest! {
        /// Whatever the message, the data ends only at its end, and undoing the dot-stuffing gives the message
        /// back (with CRLF line ends and a final one).
        #[test]
        fn data_content_ends_only_at_the_end_and_unstuffs_to_the_message(
            message in proptest::collection::vec(proptest::sample::select(b".\r\nab".to_vec()), 0..60)
        ) {
            let data = data_content(&message);
            let body = data.strip_suffix(b".\r\n").unwrap();
            proptest::prop_assert!(body.is_empty() || body.ends_with(b"\r\n"));
            let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
            let mut unstuffed = Vec::new();
            for line in &lines[..lines.len() - 1] {
                let line = line.strip_suffix(b"\r").expect("every line ends in CRLF");
                proptest::prop_assert!(!line.contains(&b'\r'), "a bare CR in {line:?}");
                proptest::prop_assert!(line != b".", "the data would end early");
                unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
                unstuffed.extend_from_slice(b"\r\n");
            }
            // The message with each CRLF, CR or LF made CRLF, and one at the end if it lacks one.
            let mut expected = Vec::new();
            let mut i = 0;
            while i < message.len() {
                match message[i] {
                    b'\r' | b'\n' => {
                        expected.extend_from_slice(b"\r\n");
                        if message[i] == b'\r' && message.get(i + 1) == Some(&b'\n') {
                            i += 1;
                        }
                    }
                    b => expected.push(b),
                }
                i += 1;
            }
            if !expected.is_empty() && !expected.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            let got = unstuffed;
            proptest::prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn auth_lines_are_base64() {
        assert_eq!(
            auth_plain("user", "pass"),
            b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"
        );
        assert_eq!(auth_login_line("user"), b"dXNlcg==\r\n");
    }
}
