//! Roles of SPEC §2 and the groups the rules speak of.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user may do. A user has one or more roles.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users, customers, tokens and webhooks; not implicitly any other role.
    Admin,
    /// 服务台 / 一线工程师 (tier l1).
    ServiceDesk,
    /// 二线工程师 (tier l2).
    L2Engineer,
    /// 运维服务人员: works customer-problem coordination tickets.
    OpsStaff,
    /// 事件经理.
    IncidentManager,
    /// 用户 / 客户, bound to one customer organisation.
    Customer,
    /// A monitoring system posting events.
    Integration,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::ServiceDesk,
        Role::L2Engineer,
        Role::OpsStaff,
        Role::IncidentManager,
        Role::Customer,
        Role::Integration,
    ];

    /// The staff roles of SPEC §2.
    pub const STAFF: [Role; 4] = [
        Role::ServiceDesk,
        Role::L2Engineer,
        Role::OpsStaff,
        Role::IncidentManager,
    ];

    /// Who may read incidents at all: staff, customer users (their organisation's) and
    /// integrations; every role but `admin`.
    pub const INCIDENT_READERS: [Role; 6] = {
        let [a, b, c, d] = Role::STAFF;
        [a, b, c, d, Role::Customer, Role::Integration]
    };

    /// The stable code used in JSON, tokens and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ServiceDesk => "service_desk",
            Role::L2Engineer => "l2_engineer",
            Role::OpsStaff => "ops_staff",
            Role::IncidentManager => "incident_manager",
            Role::Customer => "customer",
            Role::Integration => "integration",
        }
    }

    /// True for the four staff roles.
    pub fn is_staff(self) -> bool {
        Self::STAFF.contains(&self)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a role code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The roles one user holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roles(Vec<Role>);

impl Roles {
    /// Builds a set, dropping duplicates and keeping a stable order.
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Self {
        let mut roles: Vec<Role> = roles.into_iter().collect();
        roles.sort();
        roles.dedup();
        Self(roles)
    }

    /// Parses stored role codes; unknown codes are an error.
    pub fn parse<S: AsRef<str>>(codes: &[S]) -> Result<Self, UnknownRole> {
        codes
            .iter()
            .map(|code| code.as_ref().parse())
            .collect::<Result<Vec<Role>, _>>()
            .map(Self::new)
    }

    /// True when the user holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// True when the user holds any of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|role| self.has(*role))
    }

    /// True when the user holds any staff role.
    pub fn is_staff(&self) -> bool {
        self.0.iter().any(|role| role.is_staff())
    }

    /// The roles, sorted.
    pub fn as_slice(&self) -> &[Role] {
        &self.0
    }

    /// The role codes, sorted, as stored.
    pub fn codes(&self) -> Vec<String> {
        self.0.iter().map(|role| role.as_str().to_owned()).collect()
    }

    /// True when the set holds no role.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_codes_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!("root".parse::<Role>(), Err(UnknownRole("root".into())));
    }

    #[test]
    fn every_role_but_admin_reads_incidents() {
        for role in Role::ALL {
            assert_eq!(Role::INCIDENT_READERS.contains(&role), role != Role::Admin);
        }
    }

    #[test]
    fn admin_is_not_staff() {
        assert!(!Role::Admin.is_staff());
        assert!(!Role::Customer.is_staff());
        assert!(Role::OpsStaff.is_staff());
    }

    #[test]
    fn roles_are_deduplicated_and_sorted() {
        let roles = Roles::new([Role::L2Engineer, Role::Admin, Role::L2Engineer]);
        assert_eq!(roles.as_slice(), &[Role::Admin, Role::L2Engineer]);
        assert!(roles.has_any(&[Role::Customer, Role::Admin]));
        assert!(roles.is_staff());
    }

    #[test]
    fn parsing_refuses_unknown_codes() {
        assert!(Roles::parse(&["admin", "wizard"]).is_err());
        assert_eq!(
            Roles::parse(&["customer"]).unwrap().as_slice(),
            &[Role::Customer]
        );
    }
}
