//! What incident endpoints answer: the incident, its notes and its history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::incident::{Incident, IncidentView, Note, NoteVisibility};
use crate::domain::workflow::{self, Caller};
use crate::store::incidents::HistoryRow;

/// An incident as clients see it: the incident object webhooks carry too, and the
/// actions the caller may take now.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentResponse {
    /// The incident.
    #[serde(flatten)]
    pub incident: IncidentView,
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
            incident: IncidentView::new(incident, now),
            allowed_actions,
        }
    }
}

/// A note as clients see it: the domain's note, serialised as it is.
pub type NoteResponse = Note;

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
    #[serde(serialize_with = "crate::domain::timestamps::serialize")]
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
