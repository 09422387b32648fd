//! API tokens for integrations (SPEC §10): `idt_` and 256 random bits, shown once, stored as
//! a SHA-256 digest. A fast digest is enough: the token is random, not a password a person chose.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What every API token starts with; a Bearer value without it is a JWT.
pub const PREFIX: &str = "idt_";

/// A new random token.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// True for a Bearer value that is meant as an API token.
pub fn is_api_token(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// The digest under which a token is stored and looked up.
pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_prefix_and_256_random_bits() {
        let (a, b) = (generate(), generate());
        assert!(is_api_token(&a));
        assert_ne!(a, b);
        let random = URL_SAFE_NO_PAD.decode(&a[PREFIX.len()..]).unwrap();
        assert_eq!(random.len(), 32);
    }

    #[test]
    fn digests_are_32_bytes_and_differ_per_token() {
        assert_eq!(digest("idt_a").len(), 32);
        assert_ne!(digest("idt_a"), digest("idt_b"));
        assert_eq!(digest("idt_a"), digest("idt_a"));
    }

    #[test]
    fn only_prefixed_values_are_api_tokens() {
        assert!(!is_api_token("eyJhbGciOiJIUzI1NiJ9.x.y"));
        assert!(!is_api_token("IDT_x"));
    }
}
