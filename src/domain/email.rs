//! [`EmailAddress`]: a subscriber's address, parsed once at the edge so nothing downstream holds an invalid one.

use std::fmt;

/// Why a string is not an address we can mail, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{input}\" is not an email address: {reason}")]
pub struct InvalidEmail {
    pub input: String,
    pub reason: &'static str,
}

/// A syntactically valid address (`local@domain.tld`), lowercased so one person is one subscriber.
///
/// The domain is kept in its IDNA ASCII form; the local part must be ASCII (tidings does not send SMTPUTF8).
/// Lowercasing the local part is a deliberate simplification: RFC 5321 lets servers treat it as case-sensitive,
/// but no mainstream provider does, and duplicates by case are the more common harm.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<EmailAddress, InvalidEmail> {
        let fail = |reason| InvalidEmail {
            input: input.to_string(),
            reason,
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(fail("it is empty"));
        }
        if trimmed.chars().any(is_format_char) {
            return Err(fail(
                "it contains invisible or text-direction characters (U+200B, U+202E …); type the address again",
            ));
        }
        if trimmed
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
        {
            return Err(fail(
                "it contains spaces, control characters or one of <>()[]\\,;:\"",
            ));
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(fail("it has no @"));
        };
        if !local.is_ascii() {
            return Err(fail(
                "the part before @ has non-ASCII letters, which need SMTPUTF8 that tidings does not send; use an \
                 ASCII address",
            ));
        }
        if local.is_empty() || local.contains('@') || local.len() > 64 {
            return Err(fail(
                "the part before @ must be 1 to 64 characters without another @",
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(fail("the part before @ has a misplaced dot"));
        }
        // One spelling per domain: Unicode (bücher.de) and its ASCII form (xn--bcher-kva.de) are one address.
        let Ok(domain) = idna::domain_to_ascii(domain) else {
            return Err(fail("the domain is not a valid internationalized name"));
        };
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        {
            return Err(fail("the domain must be a dotted name like example.com"));
        }
        let address = format!("{}@{domain}", local.to_ascii_lowercase());
        if address.len() > 254 {
            return Err(fail("it is longer than 254 characters"));
        }
        if address.parse::<lettre::Address>().is_err() {
            return Err(fail("it is not a valid address"));
        }
        Ok(EmailAddress(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// Unicode format characters (general category Cf: bidi controls, zero-width and invisible characters), which
/// make an address look like another one.
fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}' | '\u{0890}'..='\u{0891}'
        | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = InvalidEmail;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_are_trimmed_and_lowercased() {
        let a = EmailAddress::parse("  Ada.Park+news@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "ada.park+news@example.com");
        assert_eq!(a.domain(), "example.com");
    }

    #[test]
    fn invalid_addresses_are_rejected_with_a_reason() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada park@example.com",
            "ada@exa mple.com",
            "ada@example.com\r\nBcc: x@y.z",
            "<ada@example.com>",
            "ada..park@example.com",
            "ada@-example.com",
        ] {
            let err = EmailAddress::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("is not an email address"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_unicode_domain_and_its_ascii_form_are_one_address() {
        let unicode = EmailAddress::parse("Ada@Bücher.de").unwrap();
        let ascii = EmailAddress::parse("ada@xn--bcher-kva.de").unwrap();
        assert_eq!(unicode, ascii);
        assert_eq!(unicode.as_str(), "ada@xn--bcher-kva.de");
    }

    #[test]
    fn invisible_and_direction_characters_are_refused() {
        for bad in [
            "ada\u{200B}@example.com",
            "ada@exa\u{202E}mple.com",
            "\u{FEFF}ada@example.com",
            "ada@example.com\u{2066}",
        ] {
            let err = EmailAddress::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("invisible or text-direction"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn a_non_ascii_local_part_is_refused_with_the_reason() {
        let err = EmailAddress::parse("jörg@example.com")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SMTPUTF8"), "{err}");
    }
}
