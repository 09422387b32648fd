//! The incident's vocabulary (SPEC §4): statuses, tiers, kinds, channels, closure codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A text code was not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownCode {
    /// What was being parsed.
    pub what: &'static str,
    /// The text.
    pub value: String,
}

/// Defines a closed set of stable text codes with parsing, display and serde.
macro_rules! text_codes {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        // The codes are the snake_case variant names; a unit test holds the two together.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownCode;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok($name::$variant),)+
                    other => Err(UnknownCode { what: $what, value: other.to_owned() }),
                }
            }
        }
    };
}

text_codes!(
    /// Where an incident is in its life (SPEC §4.2).
    Status, "status" {
        /// 已登记: recorded, not yet taken.
        New => "new",
        /// 处理中: being worked (also while only a workaround is in place).
        InProgress => "in_progress",
        /// 已解决，待用户确认: resolved, waiting for the reporter's confirmation.
        Resolved => "resolved",
        /// 处理完成/已关闭: closed; never changes again.
        Closed => "closed",
    }
);

text_codes!(
    /// Which support line works the incident.
    Tier, "tier" {
        /// First line: the service desk.
        L1 => "l1",
        /// Second line: L2 engineers.
        L2 => "l2",
    }
);

text_codes!(
    /// Fault report or service request.
    IncidentKind, "kind" {
        /// 故障申报.
        Fault => "fault",
        /// 服务请求.
        ServiceRequest => "service_request",
    }
);

text_codes!(
    /// How the incident reached the service desk.
    Channel, "channel" {
        /// Telephone.
        Phone => "phone",
        /// Web portal.
        Web => "web",
        /// E-mail.
        Email => "email",
        /// A monitoring system.
        Monitoring => "monitoring",
        /// On site.
        Onsite => "onsite",
        /// Anything else.
        Other => "other",
    }
);

text_codes!(
    /// Why an incident was closed.
    ClosureCode, "closure_code" {
        /// Resolved (from `resolved`).
        Resolved => "resolved",
        /// Closed without a solution (from `resolved`).
        Unresolved => "unresolved",
        /// A duplicate of another incident (from `new` or `in_progress`).
        Duplicate => "duplicate",
        /// Withdrawn by the reporter (from `new` or `in_progress`).
        Withdrawn => "withdrawn",
    }
);

text_codes!(
    /// Who may read a note.
    NoteVisibility, "visibility" {
        /// Staff only.
        Internal => "internal",
        /// Staff and the reporter's organisation.
        Public => "public",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(*status));
        }
        for code in ClosureCode::ALL {
            assert_eq!(code.as_str().parse::<ClosureCode>(), Ok(*code));
        }
        assert_eq!(Status::InProgress.as_str(), "in_progress");
        assert_eq!(IncidentKind::ServiceRequest.to_string(), "service_request");
        let err = "done".parse::<Status>().unwrap_err();
        assert_eq!(err.to_string(), "unknown status `done`");
    }

    fn serde_matches_codes<T: Serialize + Copy + fmt::Display>(all: &[T]) {
        for value in all {
            assert_eq!(serde_json::to_value(value).unwrap(), value.to_string());
        }
    }

    #[test]
    fn serde_and_openapi_names_are_the_codes() {
        serde_matches_codes(Status::ALL);
        serde_matches_codes(Tier::ALL);
        serde_matches_codes(IncidentKind::ALL);
        serde_matches_codes(Channel::ALL);
        serde_matches_codes(ClosureCode::ALL);
        serde_matches_codes(NoteVisibility::ALL);
        let schema = serde_json::to_value(<Status as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(
            schema["enum"],
            serde_json::json!(["new", "in_progress", "resolved", "closed"])
        );
    }

    #[test]
    fn serde_uses_the_codes() {
        assert_eq!(
            serde_json::to_string(&Status::InProgress).unwrap(),
            "\"in_progress\""
        );
        assert_eq!(serde_json::from_str::<Tier>("\"l2\"").unwrap(), Tier::L2);
    }
}
