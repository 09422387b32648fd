//! What incident endpoints answer: the incident, its notes and its history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::incident::{
    Channel, ClosureCode, Incident, IncidentKind, Note, NoteVisibility, Reporter, Status, Tier,
};
use crate::domain::level::Level;
use crate::domain::workflow::{self, Caller};
use crate::store::incidents::HistoryRow;

/// An incident as clients see it (SPEC §4).
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentResponse {
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
    #[serde(serialize_with = "crate::api::timestamps::serialize")]
    pub due_at: DateTime<Utc>,
    /// Resolved after `due_at`, or unresolved and past it.
    pub sla_breached: bool,
    /// When it was accepted.
    #[serde(serialize_with = "crate::api::timestamps::serialize_option")]
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was resolved.
    #[serde(serialize_with = "crate::api::timestamps::serialize_option")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the reporter confirmed the resolution.
    #[serde(serialize_with = "crate::api::timestamps::serialize_option")]
    pub user_confirmed_at: Option<DateTime<Utc>>,
    /// When the reporter asked to withdraw it (`withdraw`).
    #[serde(serialize_with = "crate::api::timestamps::serialize_option")]
    pub withdrawal_requested_at: Option<DateTime<Utc>>,
    /// When it was closed.
    #[serde(serialize_with = "crate::api::timestamps::serialize_option")]
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
    #[serde(serialize_with = "crate::api::timestamps::serialize_option")]
    pub last_occurrence_at: Option<DateTime<Utc>>,
    /// Deduplication key of monitoring events.
    pub dedup_key: Option<String>,
    /// Change request reference.
    pub change_ref: Option<String>,
    /// When the call-back (回访) is due: set when a user-reported incident is closed as
    /// `resolved` or `unresolved` (`FOLLOW_UP_WINDOW` after closing); `null` otherwise.
    #[serde(serialize_with = "crate::api::timestamps::serialize_option")]
    pub follow_up_due_at: Option<DateTime<Utc>>,
    /// The published knowledge entry that solved it (named by `resolve`).
    pub knowledge_entry_id: Option<i64>,
    /// Who recorded it.
    pub created_by: i64,
    /// When it was recorded.
    #[serde(serialize_with = "crate::api::timestamps::serialize")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(serialize_with = "crate::api::timestamps::serialize")]
    pub updated_at: DateTime<Utc>,
    /// Version for `If-Match`.
    pub version: i32,
    /// Actions the caller may take now (`accept`, `workaround`, `resolve`, `confirm`,
    /// `reject-resolution`, `assign`, `withdraw`, `close`, `edit`, `note`, `escalate`).
    #[schema(example = json!(["accept", "close", "edit", "note"]))]
    pub allowed_actions: Vec<&'static str>,
}

impl IncidentResponse {
    /// `incident` as `caller` sees it at `now`; `open_customer_issue` when a coordination ticket
    /// blocks resolving it.
    pub fn new(
        incident: Incident,
        caller: &Caller,
        now: DateTime<Utc>,
        open_customer_issue: bool,
    ) -> Self {
        let allowed_actions = workflow::allowed_actions(&incident, caller, open_customer_issue);
        IncidentResponse {
            sla_breached: incident.sla_breached(now),
            allowed_actions,
            id: incident.id,
            number: incident.number,
            kind: incident.kind,
            channel: incident.channel,
            title: incident.title,
            description: incident.description,
            customer_id: incident.customer_id,
            reporter: incident.reporter,
            user_reported: incident.user_reported,
            source_system: incident.source_system,
            ci_id: incident.ci_id,
            category: incident.category,
            subcategory: incident.subcategory,
            level: incident.level,
            affects_onsite_work: incident.affects_onsite_work,
            affects_data_upload: incident.affects_data_upload,
            status: incident.status,
            tier: incident.tier,
            assignee_id: incident.assignee_id,
            workaround: incident.workaround,
            workaround_applied: incident.workaround_applied,
            solution: incident.solution,
            cause: incident.cause,
            subcause: incident.subcause,
            due_at: incident.due_at,
            accepted_at: incident.accepted_at,
            resolved_at: incident.resolved_at,
            user_confirmed_at: incident.user_confirmed_at,
            withdrawal_requested_at: incident.withdrawal_requested_at,
            closed_at: incident.closed_at,
            closed_by: incident.closed_by,
            closure_code: incident.closure_code,
            duplicate_of: incident.duplicate_of,
            recurrence_of: incident.recurrence_of,
            occurrences: incident.occurrences,
            last_occurrence_at: incident.last_occurrence_at,
            dedup_key: incident.dedup_key,
            change_ref: incident.change_ref,
            follow_up_due_at: incident.follow_up_due_at,
            knowledge_entry_id: incident.knowledge_entry_id,
            created_by: incident.created_by,
            created_at: incident.created_at,
            updated_at: incident.updated_at,
            version: incident.version,
        }
    }
}

/// A note as clients see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NoteResponse {
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
    /// When.
    #[serde(serialize_with = "crate::api::timestamps::serialize")]
    pub created_at: DateTime<Utc>,
}

impl From<Note> for NoteResponse {
    fn from(note: Note) -> Self {
        NoteResponse {
            id: note.id,
            incident_id: note.incident_id,
            author_id: note.author_id,
            visibility: note.visibility,
            body: note.body,
            created_at: note.created_at,
        }
    }
}

/// One history entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentHistoryEntry {
    /// Id.
    pub id: i64,
    /// Who acted.
    pub actor_id: Option<i64>,
    /// `created`, `edit`, `accept`, `workaround`, `resolve`, `confirm`, `reject-resolution`,
    /// `withdraw`, `assign`, `close`, `note`, `escalate`, `coordination_resolved`,
    /// `event_triggered`, `event_acknowledged`, `event_resolved`, `auto-resolve` or
    /// `reported_again`.
    #[schema(example = "accept")]
    pub action: String,
    /// Fields that changed, old → new.
    pub changes: Vec<crate::domain::changes::FieldChange>,
    /// A reason or note given with the action.
    pub comment: Option<String>,
    /// `public` entries are read by the reporter's organisation too; `internal` ones by staff
    /// only.
    pub visibility: NoteVisibility,
    /// When.
    #[serde(serialize_with = "crate::api::timestamps::serialize")]
    pub created_at: DateTime<Utc>,
}

impl IncidentHistoryEntry {
    /// `row` as staff (everything) or others (the customer's view of a public entry) read it.
    pub fn new(row: HistoryRow, staff: bool) -> Self {
        let changes = row.field_changes();
        let (changes, comment) = if staff {
            (changes, row.comment)
        } else {
            workflow::customer_view(&row.action, changes, row.comment)
        };
        IncidentHistoryEntry {
            changes,
            comment,
            visibility: if row.internal {
                NoteVisibility::Internal
            } else {
                NoteVisibility::Public
            },
            id: row.id,
            actor_id: row.actor_id,
            action: row.action,
            created_at: row.created_at,
        }
    }
}
