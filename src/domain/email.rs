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
        if trimmed.len() > 254 {
            return Err(fail("it is longer than 254 characters"));
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
        if local.is_empty() || local.contains('@') || local.len() > 64 {
            return Err(fail(
                "the part before @ must be 1 to 64 characters without another @",
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(fail("the part before @ has a misplaced dot"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
        {
            return Err(fail("the domain must be a dotted name like example.com"));
        }
        let address = trimmed.to_lowercase();
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
}
