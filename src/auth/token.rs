//! JWT access tokens (HS256, SPEC §10).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::role::Roles;

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id, as a string (RFC 7519 `sub`).
    pub sub: String,
    /// Role codes at issue time.
    pub roles: Vec<String>,
    /// Customer organisation of a customer user.
    pub customer_id: Option<i64>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The user's token generation at issue time; a later generation revokes the token.
    #[serde(rename = "gen")]
    pub generation: i32,
}

impl Claims {
    /// The user id in `sub`, when it is one.
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

/// Why a token was refused. The reason is logged, the client only learns "invalid token".
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(String);

/// Tokens kept at most in [`TokenKeys`]' verified tokens; beyond that they start over (a token
/// is issued per sign-in, and lives for the token lifetime).
const MAX_VERIFIED: usize = 4_096;

/// Signs and checks access tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// Tokens whose signature verified, by their exact text, with their claims. Checking a
    /// signature sets up the HMAC key and hashes the token: a quarter of the instructions of a
    /// read of one incident, repeated for every request a client sends with the same token.
    /// Only a token that verified is ever found here, and its expiry is checked at every use.
    verified: Arc<Mutex<HashMap<String, Arc<Claims>>>>,
}

impl TokenKeys {
    /// Keys for `secret`, issuing tokens that live for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // Pin the algorithm: a token that names any other (`none`, RS256 ...) is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
            verified: Arc::default(),
        }
    }

    /// Token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token for a user at `now`.
    pub fn issue(
        &self,
        user_id: i64,
        roles: &Roles,
        customer_id: Option<i64>,
        generation: i32,
        now: DateTime<Utc>,
    ) -> Result<String, TokenError> {
        let claims = Claims {
            sub: user_id.to_string(),
            roles: roles.codes(),
            customer_id,
            iat: now.timestamp(),
            exp: now.timestamp() + self.ttl.as_secs() as i64,
            generation,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError(e.to_string()))
    }

    /// Checks signature, algorithm and expiry; returns the claims, shared with the kept token's.
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        // The clock `jsonwebtoken` checks expiry with.
        self.verify_at(token, jsonwebtoken::get_current_timestamp())
    }

    /// [`Self::verify`] at `now` (seconds since the epoch) for a token verified before; a token
    /// seen for the first time is checked by `jsonwebtoken` against the system clock.
    fn verify_at(&self, token: &str, now: u64) -> Result<Arc<Claims>, TokenError> {
        let known = self.verified().get(token).cloned();
        if let Some(claims) = known {
            return if self.expired(&claims, now) {
                self.verified().remove(token);
                Err(TokenError("ExpiredSignature".into()))
            } else {
                Ok(claims)
            };
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| Arc::new(data.claims))
            .map_err(|e| TokenError(e.to_string()))?;
        let mut verified = self.verified();
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(token.to_owned(), Arc::clone(&claims));
        Ok(claims)
    }

    /// `jsonwebtoken`'s expiry rule, for a token it accepted before: expired once `exp` is more
    /// than the leeway in the past.
    fn expired(&self, claims: &Claims, now: u64) -> bool {
        let limit = i128::from(now) - i128::from(self.validation.leeway)
            + i128::from(self.validation.reject_tokens_expiring_in_less_than);
        i128::from(claims.exp) < limit
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Claims>>> {
        // A panic while the lock was held cannot leave an entry half written.
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::role::Role;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(3600),
        )
    }

    #[test]
    fn issued_tokens_verify() {
        let token = keys()
            .issue(7, &Roles::new([Role::Customer]), Some(3), 0, Utc::now())
            .unwrap();
        let claims = keys().verify(&token).unwrap();
        assert_eq!(claims.user_id(), Some(7));
        assert_eq!(claims.roles, vec!["customer"]);
        assert_eq!(claims.customer_id, Some(3));
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn expired_tokens_are_refused() {
        let issued = Utc::now() - chrono::Duration::hours(2);
        let token = keys().issue(1, &Roles::default(), None, 0, issued).unwrap();
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn tokens_signed_with_another_key_are_refused() {
        let other = TokenKeys::new(b"another-secret-another-secret-xx", Duration::from_secs(60));
        let token = other
            .issue(1, &Roles::default(), None, 0, Utc::now())
            .unwrap();
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let now = Utc::now().timestamp();
        let payload = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"1","roles":["admin"],"customer_id":null,"gen":0,"iat":{now},"exp":{}}}"#,
            now + 600
        ));
        assert!(keys().verify(&format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn a_token_verified_before_is_refused_once_it_expires() {
        let keys = keys();
        let token = keys
            .issue(7, &Roles::default(), None, 0, Utc::now())
            .unwrap();
        let exp = keys.verify(&token).unwrap().exp as u64;
        // Within the leeway of 5 s, then past it, as jsonwebtoken would.
        assert_eq!(keys.verify_at(&token, exp + 5).unwrap().user_id(), Some(7));
        assert!(keys.verify_at(&token, exp + 6).is_err());
        assert!(keys.verified().is_empty());
    }

    #[test]
    fn a_token_altered_after_its_original_verified_is_refused() {
        let keys = keys();
        let token = keys
            .issue(7, &Roles::default(), None, 0, Utc::now())
            .unwrap();
        keys.verify(&token).unwrap();
        let (unsigned, signature) = token.rsplit_once('.').unwrap();
        // The first character: the last one also carries padding bits.
        let mut other = signature.to_owned();
        let first = if other.starts_with('A') { "B" } else { "A" };
        other.replace_range(..1, first);
        assert!(keys.verify(&format!("{unsigned}.{other}")).is_err());
        // Another payload under the original signature.
        let payload = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"1","roles":["admin"],"customer_id":null,"gen":0,"iat":0,"exp":{}}}"#,
            Utc::now().timestamp() + 600
        ));
        let header = unsigned.split('.').next().unwrap();
        assert!(
            keys.verify(&format!("{header}.{payload}.{signature}"))
                .is_err()
        );
        assert_eq!(keys.verified().len(), 1);
    }

    #[test]
    fn the_verified_tokens_kept_are_bounded() {
        let keys = keys();
        let now = Utc::now();
        for user in 0..=MAX_VERIFIED as i64 {
            let token = keys.issue(user, &Roles::default(), None, 0, now).unwrap();
            keys.verify(&token).unwrap();
            assert!(keys.verified().len() <= MAX_VERIFIED);
        }
        assert_eq!(keys.verified().len(), 1);
    }
}
