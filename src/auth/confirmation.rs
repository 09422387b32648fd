//! Confirmation tokens (SPEC §12): what a `resolved` message carries so that the reporter can
//! confirm or reject the resolution without an account.
//!
//! A token names the incident and the resolution it is about (the incident's `resolved_at`)
//! and when it expires, signed with HMAC-SHA256 under a key derived from `JWT_SECRET`:
//! `icc_<incident>.<resolution, µs>.<expiry, s>.<signature>`. Nothing is stored: the token is
//! spent when its resolution stops being the one awaiting confirmation (confirmed, rejected,
//! closed), which also spends every reminder's copy of it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every confirmation token starts with.
pub const PREFIX: &str = "icc_";

/// How long a token lives at most after the resolution (SPEC §12: 14 days).
pub const VALIDITY: TimeDelta = TimeDelta::days(14);

/// What a token that verified says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmation {
    /// The incident.
    pub incident_id: i64,
    /// The resolution it is about: the incident's `resolved_at`.
    pub resolution: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// The token was not made by this service (or was altered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the confirmation token is not valid")]
pub struct Forged;

/// Signs and checks confirmation tokens.
#[derive(Clone)]
pub struct ConfirmationKeys {
    key: Vec<u8>,
}

impl ConfirmationKeys {
    /// Keys derived from the access-token secret: a key of its own, so that neither kind of
    /// token can pass for the other.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"incident-desk confirmation tokens");
        ConfirmationKeys {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(payload.as_bytes());
        mac
    }

    /// The token for the resolution of incident `incident_id` at `resolution`.
    pub fn issue(&self, incident_id: i64, resolution: DateTime<Utc>) -> String {
        let expires_at = resolution + VALIDITY;
        let payload = format!(
            "{incident_id}.{}.{}",
            resolution.timestamp_micros(),
            expires_at.timestamp()
        );
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{PREFIX}{payload}.{signature}")
    }

    /// What `token` says, when this service signed it; expiry is the caller's to judge.
    pub fn verify(&self, token: &str) -> Result<Confirmation, Forged> {
        let rest = token.strip_prefix(PREFIX).ok_or(Forged)?;
        let (payload, signature) = rest.rsplit_once('.').ok_or(Forged)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| Forged)?;
        self.mac(payload)
            .verify_slice(&signature)
            .map_err(|_| Forged)?;
        let mut parts = payload.split('.');
        let mut next =
            || -> Result<i64, Forged> { parts.next().ok_or(Forged)?.parse().map_err(|_| Forged) };
        let incident_id = next()?;
        let resolution = DateTime::from_timestamp_micros(next()?).ok_or(Forged)?;
        let expires_at = DateTime::from_timestamp(next()?, 0).ok_or(Forged)?;
        if parts.next().is_some() {
            return Err(Forged);
        }
        Ok(Confirmation {
            incident_id,
            resolution,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolution() -> DateTime<Utc> {
        DateTime::from_timestamp_micros(1_796_000_000_123_456).unwrap()
    }

    #[test]
    fn a_token_names_its_incident_and_resolution_and_expires_in_fourteen_days() {
        let keys = ConfirmationKeys::new(b"a secret of thirty-two characters!");
        let token = keys.issue(42, resolution());
        assert!(token.starts_with(PREFIX));
        let confirmation = keys.verify(&token).unwrap();
        assert_eq!(confirmation.incident_id, 42);
        assert_eq!(confirmation.resolution, resolution());
        assert_eq!(
            confirmation.expires_at.timestamp(),
            (resolution() + VALIDITY).timestamp()
        );
    }

    #[test]
    fn altered_or_foreign_tokens_are_forged() {
        let keys = ConfirmationKeys::new(b"a secret of thirty-two characters!");
        let token = keys.issue(42, resolution());
        let other = ConfirmationKeys::new(b"another secret of thirty-two chars");
        assert_eq!(other.verify(&token), Err(Forged));
        let altered = token.replacen("icc_42.", "icc_43.", 1);
        assert_eq!(keys.verify(&altered), Err(Forged));
        for bad in [
            "",
            "icc_",
            "icc_1.2.3",
            "idt_x",
            "icc_1.2.3.4.!!",
            "eyJ.x.y",
        ] {
            assert_eq!(keys.verify(bad), Err(Forged), "{bad}");
        }
    }

    #[test]
    fn the_key_is_not_the_access_token_key() {
        let secret = b"a secret of thirty-two characters!";
        assert_ne!(ConfirmationKeys::new(secret).key, secret.to_vec());
    }
}
