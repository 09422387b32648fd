//! Rules for customer organisations.

use super::validation::FieldError;

/// Checks a customer code: 1–64 characters of letters, digits, `_ . -`, starting with a
/// letter or digit. Monitoring systems send it as `custom_details.customer`.
pub fn check_code(code: &str) -> Result<(), FieldError> {
    let mut chars = code.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok && code.len() <= 64 {
        Ok(())
    } else {
        Err(FieldError::new(
            "code",
            "invalid",
            "must be 1-64 letters, digits, _ . or -, starting with a letter or digit",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_a_fixed_shape() {
        for good in ["QDH", "qd-hospital_1", "A.B", "7"] {
            assert!(check_code(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "青岛", &"x".repeat(65)] {
            assert!(check_code(bad).is_err(), "{bad}");
        }
    }
}
