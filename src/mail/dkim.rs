//! DKIM signing with lettre: relaxed/relaxed canonicalization and a fixed list of signed headers. Both choices
//! come from probing lettre 0.11.23 against dkimpy: "simple" fails verification, and so does signing
//! `Content-Type` on a multipart message. Both List-Unsubscribe headers are signed, as Gmail's one-click
//! unsubscribe requires (RFC 8058 section 4).

use std::path::Path;

use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;

use super::MailError;
use crate::config::DkimSettings;

const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
];

pub struct DkimSigner {
    config: DkimConfig,
}

impl DkimSigner {
    /// Reads the key file named in `[mail.dkim]`.
    pub fn load(settings: &DkimSettings) -> Result<DkimSigner, MailError> {
        let pem =
            std::fs::read_to_string(&settings.key_file).map_err(|source| MailError::DkimRead {
                path: settings.key_file.clone(),
                source,
            })?;
        DkimSigner::from_pem(
            &settings.key_file,
            &pem,
            &settings.selector,
            &settings.domain,
        )
    }

    pub fn from_pem(
        origin: &Path,
        pem: &str,
        selector: &str,
        domain: &str,
    ) -> Result<DkimSigner, MailError> {
        let key = DkimSigningKey::new(pem, DkimSigningAlgorithm::Rsa).map_err(|e| {
            MailError::DkimKey {
                path: origin.to_owned(),
                reason: e.to_string(),
            }
        })?;
        for (field, value) in [("selector", selector), ("domain", domain)] {
            if value.is_empty()
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
            {
                return Err(MailError::DkimSetting {
                    field,
                    value: value.into(),
                });
            }
        }
        let headers = SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        let config = DkimConfig::new(
            selector.into(),
            domain.into(),
            key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(DkimSigner { config })
    }

    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_pkcs1_pem_names_the_file_and_the_fix() {
        let err = DkimSigner::from_pem(Path::new("dkim.pem"), "not a key", "sel", "example.com")
            .err()
            .expect("garbage is not a key")
            .to_string();
        assert!(err.starts_with("dkim.pem: not an RSA private key"), "{err}");
        assert!(err.contains("openssl genrsa -traditional"), "{err}");
    }
}
