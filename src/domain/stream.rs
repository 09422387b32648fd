//! The live stream's rules (SPEC §12): which events a caller may receive and in what shape, the
//! filters a client may ask for, and how an event is written as a Server-Sent Event.

use serde_json::{Map, Value};

use super::knowledge;
use super::role::{Role, Roles};

/// Every event type the stream carries: the webhook types (SPEC §10) and those §12 adds. The
/// outbox writes no others.
pub const EVENT_TYPES: [&str; 19] = [
    "incident.created",
    "incident.updated",
    "incident.accepted",
    "incident.assigned",
    "incident.resolved",
    "incident.confirmed",
    "incident.resolution_rejected",
    "incident.withdrawn",
    "incident.closed",
    "note.created",
    "follow_up.created",
    "knowledge.published",
    "escalation.created",
    "sla.warning",
    "sla.breached",
    "coordination.created",
    "coordination.resolved",
    "attachment.created",
    "attachment.deleted",
];

/// Types about the desk's own work (escalations, SLA alarms, coordination tickets, follow-up
/// calls), which only staff may read through the API.
const STAFF_ONLY_TYPES: [&str; 6] = [
    "follow_up.created",
    "escalation.created",
    "sla.warning",
    "sla.breached",
    "coordination.created",
    "coordination.resolved",
];

/// Who reads an event: its type and the customer its incident belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// Staff, admins and integrations: every event whose type their roles may read, in full.
    Desk {
        /// Holds a staff role (escalations, SLA alarms, coordination, follow-ups).
        staff: bool,
        /// May read knowledge entries.
        knowledge: bool,
    },
    /// A customer user: its organisation's incidents and public notes, and published knowledge,
    /// in the customer's shape.
    Customer(i64),
}

impl Reader {
    /// The reader that a user with `roles`, bound to `customer_id`, is.
    pub fn of(roles: &Roles, customer_id: Option<i64>) -> Reader {
        match customer_id {
            Some(own) if roles.has(Role::Customer) => Reader::Customer(own),
            _ => Reader::Desk {
                staff: roles.is_staff(),
                knowledge: roles.has_any(&knowledge::READERS),
            },
        }
    }
}

/// An event as the stream keeps it: its frame for the desk, and for customers when they may
/// receive it at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The event's id (its `id:` line, and what `Last-Event-ID` names).
    pub id: i64,
    /// Its type.
    pub event_type: String,
    /// The customer its incident belongs to.
    pub customer_id: Option<i64>,
    /// The incident it is about.
    pub incident_id: Option<i64>,
    /// What the file of an `attachment.*` event belongs to: only staff read a coordination
    /// ticket's files, only knowledge readers an entry's.
    pub attachment_owner: Option<AttachmentOwner>,
    /// The whole Server-Sent Event as desk readers get it.
    pub desk_frame: String,
    /// The event as a customer of `customer_id` gets it; `None` when customers never do.
    pub customer_frame: Option<String>,
}

/// A stored event, before it is prepared for readers.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Id.
    pub id: i64,
    /// Type.
    pub event_type: String,
    /// When, as RFC 3339 (the API's timestamps).
    pub occurred_at: String,
    /// The customer its incident belongs to.
    pub customer_id: Option<i64>,
    /// Who acted.
    pub actor_id: Option<i64>,
    /// The resources, as webhooks carry them: `incident`, `note`, `escalation`,
    /// `coordination_ticket`, `follow_up`, `knowledge_entry`.
    pub data: Value,
}

impl Prepared {
    /// Writes `event` as the desk and customers receive it.
    pub fn new(event: Stored) -> Prepared {
        let subjects = Subjects::of(&event.data);
        let customer_data = customer_view(&event.event_type, &event.data);
        let customer_frame = customer_data.map(|data| frame(&event, &subjects, data));
        let desk_frame = frame(&event, &subjects, event.data.clone());
        Prepared {
            id: event.id,
            attachment_owner: subjects.attachment_owner,
            event_type: event.event_type,
            customer_id: event.customer_id,
            incident_id: subjects.incident_id,
            desk_frame,
            customer_frame,
        }
    }

    /// The frame `reader` receives, if any.
    pub fn frame_for(&self, reader: Reader) -> Option<&str> {
        match reader {
            Reader::Customer(own) => {
                let own_event =
                    self.customer_id == Some(own) || self.event_type == "knowledge.published";
                self.customer_frame.as_deref().filter(|_| own_event)
            }
            Reader::Desk { staff, knowledge } => {
                let allowed = if STAFF_ONLY_TYPES.contains(&self.event_type.as_str())
                    || self.attachment_owner == Some(AttachmentOwner::CoordinationTicket)
                {
                    staff
                } else if self.event_type == "knowledge.published"
                    || self.attachment_owner == Some(AttachmentOwner::KnowledgeEntry)
                {
                    knowledge
                } else {
                    true
                };
                allowed.then_some(self.desk_frame.as_str())
            }
        }
    }
}

/// What a client asked to receive (`types`, `incident_id`, `customer_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these types; empty: every type.
    pub types: Vec<&'static str>,
    /// Only events about this incident.
    pub incident_id: Option<i64>,
    /// Only events about this customer's incidents.
    pub customer_id: Option<i64>,
}

impl Filter {
    /// Whether `event` passes.
    pub fn passes(&self, event: &Prepared) -> bool {
        (self.types.is_empty() || self.types.contains(&event.event_type.as_str()))
            && self
                .incident_id
                .is_none_or(|id| event.incident_id == Some(id))
            && self
                .customer_id
                .is_none_or(|id| event.customer_id == Some(id))
    }
}

/// Reads a `types` value: a comma-separated list of [`EVENT_TYPES`]. `Err` names the first
/// unknown one.
pub fn parse_types(raw: &str) -> Result<Vec<&'static str>, String> {
    let mut types = Vec::new();
    for name in raw
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        match EVENT_TYPES.iter().find(|known| **known == name) {
            Some(known) if !types.contains(known) => types.push(*known),
            Some(_) => {}
            None => return Err(name.chars().take(60).collect()),
        }
    }
    Ok(types)
}

/// Reads a `Last-Event-ID`: the decimal id of an event this stream sent (a positive integer).
pub fn parse_event_id(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok().filter(|id| *id > 0)
}

/// What the file of an `attachment.*` event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentOwner {
    /// An incident.
    Incident,
    /// A coordination ticket.
    CoordinationTicket,
    /// A knowledge entry.
    KnowledgeEntry,
}

/// The ids an event names at its top level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Subjects {
    incident_id: Option<i64>,
    ticket_id: Option<i64>,
    entry_id: Option<i64>,
    attachment_owner: Option<AttachmentOwner>,
}

impl Subjects {
    fn of(data: &Value) -> Subjects {
        let field = |object: &str, field: &str| data.get(object)?.get(field)?.as_i64();
        let owner = data.get("attachment").and_then(|a| a.get("owner"));
        let owner_kind = owner
            .and_then(|o| o.get("kind"))
            .and_then(Value::as_str)
            .and_then(|kind| match kind {
                "incident" => Some(AttachmentOwner::Incident),
                "coordination_ticket" => Some(AttachmentOwner::CoordinationTicket),
                "knowledge_entry" => Some(AttachmentOwner::KnowledgeEntry),
                _ => None,
            });
        let owned = |kind: AttachmentOwner| {
            owner
                .filter(|_| owner_kind == Some(kind))
                .and_then(|o| o.get("id"))
                .and_then(Value::as_i64)
        };
        Subjects {
            incident_id: field("incident", "id")
                .or_else(|| field("coordination_ticket", "incident_id"))
                .or_else(|| field("follow_up", "incident_id"))
                .or_else(|| owned(AttachmentOwner::Incident)),
            ticket_id: field("coordination_ticket", "id")
                .or_else(|| owned(AttachmentOwner::CoordinationTicket)),
            entry_id: field("knowledge_entry", "id")
                .or_else(|| owned(AttachmentOwner::KnowledgeEntry)),
            attachment_owner: owner_kind,
        }
    }
}

/// The event's data as a customer may read it; `None` when customers never receive it: the
/// desk's own work, and internal notes.
fn customer_view(event_type: &str, data: &Value) -> Option<Value> {
    if STAFF_ONLY_TYPES.contains(&event_type) {
        return None;
    }
    if let Some(attachment) = data.get("attachment") {
        let public = attachment.get("visibility").and_then(Value::as_str) == Some("public");
        let of_incident = attachment
            .get("owner")
            .and_then(|o| o.get("kind"))
            .and_then(Value::as_str)
            == Some("incident");
        if !(public && of_incident) {
            return None;
        }
    }
    let mut data = data.clone();
    if event_type == "note.created" {
        let visibility = data.get("note")?.get("visibility")?.as_str()?;
        if visibility != "public" {
            return None;
        }
    }
    if let Some(entry) = data.get_mut("knowledge_entry") {
        knowledge::withhold_from_customers(entry);
    }
    Some(data)
}

/// The Server-Sent Event: `id`, `event` and one `data` line holding
/// `{type, occurred_at, incident_id?, ticket_id?, entry_id?, actor_id, data}`. Compact JSON has
/// no line breaks, so one `data:` line carries it whole.
fn frame(event: &Stored, subjects: &Subjects, data: Value) -> String {
    let mut body = Map::new();
    body.insert("type".into(), event.event_type.clone().into());
    body.insert("occurred_at".into(), event.occurred_at.clone().into());
    for (name, id) in [
        ("incident_id", subjects.incident_id),
        ("ticket_id", subjects.ticket_id),
        ("entry_id", subjects.entry_id),
    ] {
        if let Some(id) = id {
            body.insert(name.into(), id.into());
        }
    }
    body.insert("actor_id".into(), event.actor_id.into());
    body.insert("data".into(), data);
    format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        event.id,
        event.event_type,
        Value::Object(body)
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(event_type: &str, customer_id: Option<i64>, data: Value) -> Stored {
        Stored {
            id: 41,
            event_type: event_type.into(),
            occurred_at: "2026-12-07T09:15:00Z".into(),
            customer_id,
            actor_id: Some(2),
            data,
        }
    }

    fn note(visibility: &str) -> Prepared {
        Prepared::new(stored(
            "note.created",
            Some(1),
            json!({"incident": {"id": 7}, "note": {"id": 3, "visibility": visibility, "body": "x"}}),
        ))
    }

    const DESK: Reader = Reader::Desk {
        staff: true,
        knowledge: true,
    };
    const INTEGRATION: Reader = Reader::Desk {
        staff: false,
        knowledge: false,
    };

    #[test]
    fn a_frame_is_one_event_with_the_envelope_of_the_contract() {
        let event = note("public");
        let frame = event.frame_for(DESK).unwrap();
        let lines: Vec<&str> = frame.split('\n').collect();
        assert_eq!(lines[0], "id: 41");
        assert_eq!(lines[1], "event: note.created");
        assert!(frame.ends_with("\n\n"));
        assert_eq!(frame.matches('\n').count(), 4, "{frame}");
        let body: Value = serde_json::from_str(lines[2].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"type": "note.created", "occurred_at": "2026-12-07T09:15:00Z",
                   "incident_id": 7, "actor_id": 2,
                   "data": {"incident": {"id": 7}, "note": {"id": 3, "visibility": "public", "body": "x"}}})
        );
    }

    fn attachment(kind: &str, owner: i64, visibility: &str) -> Prepared {
        Prepared::new(stored(
            "attachment.created",
            (kind == "incident").then_some(1),
            json!({"attachment": {"id": 5, "owner": {"kind": kind, "id": owner},
                   "visibility": visibility, "filename": "a.log"}}),
        ))
    }

    #[test]
    fn files_reach_readers_as_their_owners_do() {
        let public = attachment("incident", 7, "public");
        assert_eq!(public.incident_id, Some(7));
        assert!(public.frame_for(Reader::Customer(1)).is_some());
        assert!(public.frame_for(Reader::Customer(2)).is_none());
        assert!(public.frame_for(INTEGRATION).is_some());
        let internal = attachment("incident", 7, "internal");
        assert!(internal.frame_for(Reader::Customer(1)).is_none());
        assert!(internal.frame_for(DESK).is_some());
        let ticket = attachment("coordination_ticket", 3, "internal");
        assert!(ticket.desk_frame.contains(r#""ticket_id":3"#));
        assert!(ticket.frame_for(INTEGRATION).is_none());
        assert!(ticket.frame_for(DESK).is_some());
        let entry = attachment("knowledge_entry", 4, "public");
        assert!(entry.desk_frame.contains(r#""entry_id":4"#));
        assert!(entry.frame_for(INTEGRATION).is_none());
        assert!(entry.frame_for(Reader::Customer(1)).is_none());
    }

    #[test]
    fn text_with_line_breaks_stays_on_one_data_line() {
        let event = Prepared::new(stored(
            "incident.updated",
            Some(1),
            json!({"incident": {"id": 7, "description": "a\nb\r\nc"}}),
        ));
        assert_eq!(event.desk_frame.matches('\n').count(), 4);
    }

    #[test]
    fn customers_get_their_own_organisation_and_public_notes_only() {
        let public = note("public");
        let internal = note("internal");
        assert!(public.frame_for(Reader::Customer(1)).is_some());
        assert!(public.frame_for(Reader::Customer(2)).is_none());
        assert!(internal.frame_for(Reader::Customer(1)).is_none());
        assert!(internal.frame_for(DESK).is_some());
        assert!(internal.frame_for(INTEGRATION).is_some());
    }

    #[test]
    fn the_desks_own_work_reaches_staff_only() {
        for event_type in STAFF_ONLY_TYPES {
            let event = Prepared::new(stored(
                event_type,
                Some(1),
                json!({"incident": {"id": 7}, "escalation": {"id": 1}}),
            ));
            assert!(event.frame_for(DESK).is_some(), "{event_type}");
            assert!(event.frame_for(INTEGRATION).is_none(), "{event_type}");
            assert!(
                event.frame_for(Reader::Customer(1)).is_none(),
                "{event_type}"
            );
        }
    }

    #[test]
    fn customers_read_published_knowledge_without_who_and_where_from() {
        let event = Prepared::new(stored(
            "knowledge.published",
            None,
            json!({"knowledge_entry": {"id": 5, "title": "t", "author_id": 2, "reviewed_by": 4,
                   "source_incident_id": 9, "reject_reason": null}}),
        ));
        let frame = event.frame_for(Reader::Customer(3)).unwrap();
        assert!(frame.contains("\"entry_id\":5"));
        for field in knowledge::STAFF_ONLY_FIELDS {
            assert!(!frame.contains(field), "{field} in {frame}");
            assert!(event.desk_frame.contains(field), "{field}");
        }
        assert!(event.frame_for(INTEGRATION).is_none());
    }

    #[test]
    fn readers_follow_the_roles() {
        let roles = |names: &[Role]| Roles::new(names.iter().copied());
        assert_eq!(
            Reader::of(&roles(&[Role::Customer]), Some(4)),
            Reader::Customer(4)
        );
        assert_eq!(Reader::of(&roles(&[Role::ServiceDesk]), None), DESK);
        assert_eq!(Reader::of(&roles(&[Role::Admin]), None), INTEGRATION);
    }

    #[test]
    fn ticket_and_follow_up_events_name_their_incident() {
        let ticket = Prepared::new(stored(
            "coordination.created",
            Some(1),
            json!({"coordination_ticket": {"id": 3, "incident_id": 7}}),
        ));
        assert_eq!(ticket.incident_id, Some(7));
        assert!(ticket.desk_frame.contains("\"ticket_id\":3"));
        let call = Prepared::new(stored(
            "follow_up.created",
            Some(1),
            json!({"follow_up": {"id": 2, "incident_id": 8}}),
        ));
        assert_eq!(call.incident_id, Some(8));
    }

    #[test]
    fn filters_narrow_by_type_incident_and_customer() {
        let event = note("public");
        let all = Filter::default();
        assert!(all.passes(&event));
        let types = Filter {
            types: vec!["incident.created"],
            ..Filter::default()
        };
        assert!(!types.passes(&event));
        let incident = Filter {
            incident_id: Some(7),
            ..Filter::default()
        };
        assert!(incident.passes(&event));
        let other = Filter {
            customer_id: Some(2),
            ..Filter::default()
        };
        assert!(!other.passes(&event));
    }

    #[test]
    fn types_are_a_comma_list_of_known_names() {
        assert_eq!(
            parse_types("incident.created, note.created,,incident.created"),
            Ok(vec!["incident.created", "note.created"])
        );
        assert_eq!(
            parse_types("incident.deleted"),
            Err("incident.deleted".into())
        );
        assert_eq!(parse_types(""), Ok(vec![]));
    }

    #[test]
    fn event_ids_are_positive_decimals() {
        assert_eq!(parse_event_id("42"), Some(42));
        assert_eq!(parse_event_id(" 42 "), Some(42));
        for bad in ["", "0", "-1", "4e2", "abc", "99999999999999999999", "+4"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }
}
