//! JWT access tokens (HS256, SPEC §10).

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

/// Signs and checks access tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
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

    /// Checks signature, algorithm and expiry; returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError(e.to_string()))
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
}
