//! The incident (SPEC §4): its vocabulary (statuses, tiers, kinds, channels, closure codes) and
//! the [`Incident`] value every rule works on, with each code typed.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use super::level::Level;
use super::validation::{check_text, rule};

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

pub(crate) use text_codes;

text_codes!(
    /// Where an incident is in its life.
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

/// Who reported the incident (for user-reported incidents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reporter {
    /// Name, 1–200 characters.
    #[validate(custom(function = "reporter_name_rule"))]
    #[schema(example = "王医生", min_length = 1, max_length = 200)]
    pub name: String,
    /// Telephone, up to 50 characters.
    #[validate(length(max = 50))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "0532-8888-0000", max_length = 50)]
    pub phone: Option<String>,
    /// E-mail address.
    #[validate(email)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "wang@hospital.example", format = Email)]
    pub email: Option<String>,
}

fn reporter_name_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("name", value, 200))
}

/// A note on an incident, as answers and `note.created` events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = NoteResponse)]
#[schema(example = json!({"id": 7, "incident_id": 2, "author_id": 2, "visibility": "public", "body": "已远程连接 3 号机，正在收集客户端日志。", "created_at": "2026-12-07T09:15:00Z"}))]
pub struct Note {
    /// Id.
    pub id: i64,
    /// Incident.
    pub incident_id: i64,
    /// Author.
    pub author_id: i64,
    /// Visibility.
    pub visibility: NoteVisibility,
    /// Text.
    pub body: String,
    /// Attachments of the incident the note names.
    #[serde(default)]
    pub attachment_ids: Vec<i64>,
    /// When.
    #[serde(serialize_with = "crate::domain::timestamps::serialize")]
    pub created_at: DateTime<Utc>,
}

/// An incident's fields.
// Every code is typed, and converted from the stored row once, at the store's boundary. As it
// serialises it is the incident object every client reads (`IncidentView` adds `sla_breached`),
// and history entries diff this form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    /// Id.
    pub id: i64,
    /// Human-readable number.
    #[schema(example = "INC-000123")]
    pub number: String,
    /// Fault report or service request.
    pub kind: IncidentKind,
    /// How it reached the service desk.
    pub channel: Channel,
    /// Short summary.
    pub title: String,
    /// Details.
    pub description: String,
    /// Customer organisation; `null` only for an incident monitoring opened for no known customer,
    /// which staff alone see until the service desk sets it.
    pub customer_id: Option<i64>,
    /// Reporter; `null` only for incidents monitoring opened or staff found (`monitoring`,
    /// `other`) without one.
    pub reporter: Option<Reporter>,
    /// Raised by a user: a customer user reported it, it came in by `phone`, `web`, `email` or
    /// `onsite`, or a reporter was named. Read-only, fixed at creation. A user-reported
    /// incident is closed as resolved only after the reporter confirmed, and as withdrawn only
    /// after the reporter asked (`withdraw`).
    pub user_reported: bool,
    /// IT / application system concerned.
    pub source_system: Option<String>,
    /// Configuration item concerned.
    pub ci_id: Option<i64>,
    /// Category code.
    pub category: Option<String>,
    /// Subcategory code.
    pub subcategory: Option<String>,
    /// Level.
    pub level: Level,
    /// The incident holds up on-site work.
    pub affects_onsite_work: bool,
    /// The incident holds up the data upload.
    pub affects_data_upload: bool,
    /// Status.
    pub status: Status,
    /// Support line working it.
    pub tier: Tier,
    /// Engineer working it.
    pub assignee_id: Option<i64>,
    /// Temporary measure in place.
    pub workaround: Option<String>,
    /// A workaround restored the service (the incident stays in progress).
    pub workaround_applied: bool,
    /// Recorded solution.
    pub solution: Option<String>,
    /// Cause code.
    pub cause: Option<String>,
    /// Sub-cause code.
    pub subcause: Option<String>,
    /// Resolution deadline.
    #[serde(serialize_with = "crate::domain::timestamps::serialize")]
    pub due_at: DateTime<Utc>,
    /// When it was accepted.
    #[serde(serialize_with = "crate::domain::timestamps::serialize_option")]
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was resolved.
    #[serde(serialize_with = "crate::domain::timestamps::serialize_option")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the reporter confirmed the resolution.
    #[serde(serialize_with = "crate::domain::timestamps::serialize_option")]
    pub user_confirmed_at: Option<DateTime<Utc>>,
    /// When the reporter asked to withdraw it (`withdraw`).
    #[serde(serialize_with = "crate::domain::timestamps::serialize_option")]
    pub withdrawal_requested_at: Option<DateTime<Utc>>,
    /// When it was closed.
    #[serde(serialize_with = "crate::domain::timestamps::serialize_option")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Who closed it.
    pub closed_by: Option<i64>,
    /// Why it was closed.
    pub closure_code: Option<ClosureCode>,
    /// The incident this one duplicates.
    pub duplicate_of: Option<i64>,
    /// The closed incident this one is a recurrence of.
    pub recurrence_of: Option<i64>,
    /// Reports counted on this incident.
    pub occurrences: i32,
    /// Last report counted on it.
    #[serde(serialize_with = "crate::domain::timestamps::serialize_option")]
    pub last_occurrence_at: Option<DateTime<Utc>>,
    /// Deduplication key of monitoring events.
    pub dedup_key: Option<String>,
    /// Change request reference.
    pub change_ref: Option<String>,
    /// When the call-back (回访) is due: set when a user-reported incident is closed as
    /// `resolved` or `unresolved` (`FOLLOW_UP_WINDOW` after closing); `null` otherwise.
    #[serde(serialize_with = "crate::domain::timestamps::serialize_option")]
    pub follow_up_due_at: Option<DateTime<Utc>>,
    /// The published knowledge entry that solved it (named by `resolve`).
    pub knowledge_entry_id: Option<i64>,
    /// Who recorded it.
    pub created_by: i64,
    /// When it was recorded.
    #[serde(serialize_with = "crate::domain::timestamps::serialize")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(serialize_with = "crate::domain::timestamps::serialize")]
    pub updated_at: DateTime<Utc>,
    /// Version for `If-Match`.
    pub version: i32,
    /// Links the monitoring event that opened it carried (PagerDuty `links` and `images`,
    /// Alertmanager's `generatorURL`): graphs, runbooks, dashboards.
    #[serde(default)]
    pub links: Vec<Link>,
}

/// A link kept on an incident: a graph, runbook or dashboard a monitoring event named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"href": "https://grafana.example/d/his-db", "text": "HIS database dashboard"}))]
pub struct Link {
    /// An `http` or `https` address.
    pub href: String,
    /// What it shows; the address itself when the sender gave no text.
    pub text: String,
}

/// The most links an incident keeps.
pub const MAX_LINKS: usize = 20;
/// The longest link address kept.
pub const MAX_LINK_HREF: usize = 2048;
/// The longest link text kept (characters).
pub const MAX_LINK_TEXT: usize = 200;

impl Link {
    /// A link to `href` named `text`, when `href` is an absolute `http(s)` address a browser can
    /// safely open (a `javascript:` or `data:` link from a sender is never kept).
    pub fn checked(href: &str, text: Option<&str>) -> Option<Link> {
        let href = href.trim();
        let lower = href.to_ascii_lowercase();
        let web = lower.starts_with("https://") || lower.starts_with("http://");
        if !web || href.len() > MAX_LINK_HREF || href.chars().any(char::is_control) {
            return None;
        }
        let text = text
            .map(|t| {
                t.trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect::<String>()
            })
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| href.to_owned());
        Some(Link {
            href: href.to_owned(),
            text: text.chars().take(MAX_LINK_TEXT).collect(),
        })
    }
}

/// The incident object: the API's answers (which add the caller's `allowed_actions`) and
/// webhook payloads carry the same fields, so a client that reads one reads all.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IncidentView {
    /// The incident's fields.
    #[serde(flatten)]
    pub incident: Incident,
    /// Resolved after `due_at`, or unresolved and past it, at the time of the answer.
    pub sla_breached: bool,
}

impl IncidentView {
    /// `incident` as it stands at `now`.
    pub fn new(incident: Incident, now: DateTime<Utc>) -> Self {
        IncidentView {
            sla_breached: incident.sla_breached(now),
            incident,
        }
    }
}

impl Incident {
    /// The number of incident `id`: `INC-` and the id, zero-padded to six digits. The
    /// database's generated `number` column computes the same (migration 000003); the store
    /// checks that they agree whenever it writes an incident.
    pub fn number_for(id: i64) -> String {
        format!("INC-{id:06}")
    }

    /// Category and subcategory are both set.
    pub fn classified(&self) -> bool {
        self.category.is_some() && self.subcategory.is_some()
    }

    /// Missed its deadline as of `now` (SPEC §4.1).
    pub fn sla_breached(&self, now: DateTime<Utc>) -> bool {
        super::sla::sla_breached(self.due_at, self.resolved_at, self.closed_at, now)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_padded_to_six_digits_and_grow_beyond() {
        assert_eq!(super::Incident::number_for(7), "INC-000007");
        assert_eq!(super::Incident::number_for(999_999), "INC-999999");
        assert_eq!(super::Incident::number_for(1_000_000), "INC-1000000");
    }

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

/// Incidents for unit tests elsewhere in the domain.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::Incident;

    /// A user-reported high incident recorded at 01:00 UTC on 2 March 2026, due 03:00, resolved
    /// at 02:00 by L2 with a cause, confirmed, and closed as `resolved` at 04:00.
    pub(crate) fn closed_incident() -> Incident {
        let mut json = serde_json::json!({
            "id": 9, "number": "INC-000009", "kind": "fault", "channel": "phone", "title": "t",
            "description": "", "customer_id": 1, "reporter": {"name": "王医生"},
            "source_system": "HIS", "ci_id": null, "category": "usage_issue",
            "subcategory": "module_input_blocked", "level": "high", "affects_onsite_work": false,
            "affects_data_upload": false, "status": "closed", "tier": "l2", "assignee_id": 3,
            "workaround": null, "workaround_applied": false, "solution": "s",
            "cause": "system_defect", "subcause": "module_unusable",
            "due_at": "2026-03-02T03:00:00Z", "accepted_at": "2026-03-02T01:10:00Z",
            "resolved_at": "2026-03-02T02:00:00Z", "user_confirmed_at": "2026-03-02T03:00:00Z",
            "closed_at": "2026-03-02T04:00:00Z", "closed_by": 2, "closure_code": "resolved",
            "duplicate_of": null, "recurrence_of": null, "occurrences": 1,
            "last_occurrence_at": null, "dedup_key": null, "change_ref": null,
            "follow_up_due_at": "2026-03-05T04:00:00Z", "created_by": 2,
            "created_at": "2026-03-02T01:00:00Z", "updated_at": "2026-03-02T04:00:00Z",
            "version": 6
        });
        json["user_reported"] = true.into();
        serde_json::from_value(json).expect("an incident")
    }
}
