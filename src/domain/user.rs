//! Rules for user accounts: usernames, passwords, roles.

use std::collections::HashSet;
use std::sync::OnceLock;

use super::role::{Role, Roles};
use super::validation::{FieldError, check_text, is_blank};

/// Shortest and longest accepted password, in characters.
pub const PASSWORD_LENGTH: (usize, usize) = (8, 256);

/// Normalises a username (trimmed, lower-case) and checks its shape:
/// 2–64 characters of `a-z 0-9 _ . @ -`, starting with a letter or digit.
pub fn parse_username(raw: &str) -> Result<String, FieldError> {
    let username = raw.trim().to_lowercase();
    let len = username.chars().count();
    if !(2..=64).contains(&len) {
        return Err(FieldError::new(
            "username",
            "length",
            "must be between 2 and 64 characters",
        ));
    }
    let mut chars = username.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.@-".contains(c));
    if !(first_ok && rest_ok) {
        return Err(FieldError::new(
            "username",
            "invalid",
            "may contain only letters, digits and _ . @ - and must start with a letter or digit",
        ));
    }
    Ok(username)
}

/// 19 640 passwords seen most often in breaches (the list Django ships, compiled by Royce
/// Williams from breach corpora), lower-case, one per line.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().map(str::trim).collect())
}

/// Checks a new password as NIST SP 800-63B §5.1.1.2 asks: 8 to 256 characters, not blank, and
/// not one that attackers try first (on the list of common and breached passwords, compared
/// without case). No composition rules: passphrases in any script pass.
pub fn check_password(password: &str) -> Result<(), FieldError> {
    let len = password.chars().count();
    let (min, max) = PASSWORD_LENGTH;
    if len < min || len > max {
        return Err(FieldError::new(
            "password",
            "length",
            format!("must be between {min} and {max} characters"),
        ));
    }
    if is_blank(password) {
        return Err(FieldError::new("password", "blank", "must not be blank"));
    }
    if common_passwords().contains(password.trim().to_lowercase().as_str()) {
        return Err(FieldError::new(
            "password",
            "common",
            "is among the passwords attackers try first; choose another, e.g. a few unrelated words",
        ));
    }
    Ok(())
}

/// Checks a password of the account `username`: [`check_password`], and not the username itself.
pub fn check_password_of(username: &str, password: &str) -> Result<(), FieldError> {
    check_password(password)?;
    if password.trim().eq_ignore_ascii_case(username.trim()) {
        return Err(FieldError::new(
            "password",
            "same_as_username",
            "must not be the username",
        ));
    }
    Ok(())
}

/// Checks a display name: 1–200 characters with visible content.
pub fn check_display_name(name: &str) -> Result<(), FieldError> {
    check_text("display_name", name, 200)
}

/// Checks how roles and the customer binding fit together.
///
/// A `customer` user reports for exactly one organisation and sees only its incidents, so it
/// must name that organisation and cannot also hold a staff or admin role (which would see
/// everything). Staff belong to no organisation.
pub fn check_role_binding(roles: &Roles, customer_id: Option<i64>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if roles.is_empty() {
        errors.push(FieldError::new(
            "roles",
            "required",
            "at least one role is required",
        ));
        return errors;
    }
    if roles.has(Role::Customer) {
        if roles.as_slice().len() > 1 {
            errors.push(FieldError::new(
                "roles",
                "invalid",
                "the customer role cannot be combined with other roles",
            ));
        }
        if customer_id.is_none() {
            errors.push(FieldError::new(
                "customer_id",
                "required",
                "a customer user must belong to a customer organisation",
            ));
        }
    } else if customer_id.is_some() {
        errors.push(FieldError::new(
            "customer_id",
            "invalid",
            "only customer users belong to a customer organisation",
        ));
    }
    errors
}

/// Checks the roles of an API token (SPEC §10): at least one, each `integration` or a staff
/// role. `admin` and `customer` are for people: a token would hold them without a person's
/// accountability or organisation.
pub fn check_token_roles(roles: &Roles) -> Vec<FieldError> {
    if roles.is_empty() {
        return vec![FieldError::new(
            "roles",
            "required",
            "at least one role is required",
        )];
    }
    roles
        .as_slice()
        .iter()
        .filter(|role| !(role.is_staff() || **role == Role::Integration))
        .map(|role| {
            FieldError::new(
                "roles",
                "invalid",
                format!(
                    "an API token cannot hold the {role} role; use integration or a staff role"
                ),
            )
        })
        .collect()
}

/// Checks an API token's name: 1–100 characters with visible content.
pub fn check_token_name(name: &str) -> Result<(), FieldError> {
    check_text("name", name, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_passwords_and_the_username_are_refused_passphrases_pass() {
        assert!(COMMON_PASSWORDS.lines().count() >= 10_000);
        for common in [
            "password",
            "12345678",
            "qwertyuiop",
            "PassWord",
            " iloveyou ",
        ] {
            assert_eq!(
                check_password(common).map_err(|e| e.code),
                Err("common".to_owned()),
                "{common}"
            );
        }
        assert_eq!(
            check_password_of("li.lei.desk", "LI.LEI.DESK").map_err(|e| e.code),
            Err("same_as_username".to_owned())
        );
        for passphrase in [
            "收费窗口 夜班 2026 春",
            "correct horse battery staple",
            "пароль для дежурной смены",
            "lowercaseonlyisfine",
        ] {
            assert_eq!(
                check_password_of("wang.fang", passphrase),
                Ok(()),
                "{passphrase}"
            );
        }
    }

    #[test]
    fn tokens_hold_integration_or_staff_roles_only() {
        assert!(check_token_roles(&Roles::new([Role::Integration])).is_empty());
        assert!(check_token_roles(&Roles::new([Role::ServiceDesk, Role::Integration])).is_empty());
        assert_eq!(check_token_roles(&Roles::new([])).len(), 1);
        assert_eq!(check_token_roles(&Roles::new([Role::Admin])).len(), 1);
        let mixed = check_token_roles(&Roles::new([Role::Customer, Role::Admin, Role::OpsStaff]));
        assert_eq!(mixed.len(), 2);
        assert!(
            mixed
                .iter()
                .all(|e| e.field == "roles" && e.code == "invalid")
        );
    }

    #[test]
    fn usernames_are_trimmed_and_lower_cased() {
        assert_eq!(parse_username("  Alice.W ").unwrap(), "alice.w");
    }

    #[test]
    fn usernames_with_bad_shape_are_refused() {
        for bad in [
            "a",
            "",
            "-alice",
            "al ice",
            "ali$ce",
            &"x".repeat(65),
            "张三",
        ] {
            assert!(parse_username(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["ab", "ops-1", "li.lei@desk", "9lives"] {
            assert!(parse_username(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn passwords_follow_the_length_policy() {
        assert!(check_password("short").is_err());
        assert!(check_password("        ").is_err());
        assert!(check_password("long enough").is_ok());
        assert!(check_password(&"x".repeat(257)).is_err());
        assert!(check_password("密码密码密码密码").is_ok());
    }

    #[test]
    fn display_names_must_have_content() {
        assert!(check_display_name("  ").is_err());
        assert!(check_display_name("李雷").is_ok());
        assert!(check_display_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn customer_users_need_exactly_one_organisation() {
        let customer = Roles::new([Role::Customer]);
        assert!(check_role_binding(&customer, Some(1)).is_empty());
        let errors = check_role_binding(&customer, None);
        assert_eq!(errors[0].field, "customer_id");
    }

    #[test]
    fn staff_belong_to_no_organisation() {
        let staff = Roles::new([Role::ServiceDesk]);
        assert!(check_role_binding(&staff, None).is_empty());
        assert_eq!(check_role_binding(&staff, Some(3))[0].code, "invalid");
    }

    #[test]
    fn customer_role_is_exclusive() {
        let mixed = Roles::new([Role::Customer, Role::ServiceDesk]);
        let errors = check_role_binding(&mixed, Some(1));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "roles");
    }

    #[test]
    fn at_least_one_role() {
        assert_eq!(
            check_role_binding(&Roles::default(), None)[0].code,
            "required"
        );
    }
}
