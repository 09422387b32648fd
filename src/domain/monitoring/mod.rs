//! Monitoring events (SPEC §8): the PagerDuty Events API v2 body, what each event does to the
//! open incident of its `dedup_key`, and the incident a trigger opens.
//!
//! Events are read from a JSON value rather than through serde derive: a PagerDuty sender
//! expects unknown fields to be ignored and every problem named field by field in one 400.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::incident::{Link, MAX_LINKS, UnknownCode, text_codes};
use super::level::Level;
use super::role::{Role, Roles};
use super::validation::FieldError;

mod alertmanager;
mod decision;

pub use alertmanager::alertmanager_events;
pub use decision::{
    EventChange, EventDecision, OPEN_STATUSES, OpeningFacts, decide_event, opened_incident,
};

text_codes!(
    /// What an event says about its alert.
    EventAction, "event_action" {
        /// The fault fired (again).
        Trigger => "trigger",
        /// Someone acknowledged the alert at the sender.
        Acknowledge => "acknowledge",
        /// The fault recovered.
        Resolve => "resolve",
    }
);

text_codes!(
    /// How bad the sender says the fault is.
    Severity, "severity" {
        /// Critical.
        Critical => "critical",
        /// Error.
        Error => "error",
        /// Warning.
        Warning => "warning",
        /// Informational.
        Info => "info",
    }
);

impl Severity {
    /// The incident level a trigger of this severity opens (SPEC §8).
    pub fn level(self) -> Level {
        match self {
            Severity::Critical | Severity::Error => Level::High,
            Severity::Warning => Level::Medium,
            Severity::Info => Level::Low,
        }
    }
}

text_codes!(
    /// What an event did.
    EventResult, "result" {
        /// A new incident was opened.
        Created => "created",
        /// The open incident of the key counted one more occurrence.
        Deduplicated => "deduplicated",
        /// Recorded in the open incident's journal; nothing else changed.
        Noted => "noted",
        /// The open incident, still `new`, resolved itself.
        Resolved => "resolved",
        /// No open incident had the key; nothing happened.
        Ignored => "ignored",
    }
);

/// The longest `dedup_key` accepted, as PagerDuty's.
pub const MAX_DEDUP_KEY: usize = 255;
/// The longest `summary` accepted, as PagerDuty's; the incident title is its first 200.
pub const MAX_SUMMARY: usize = 1024;

/// The fault a trigger describes.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPayload {
    /// One line about the fault.
    pub summary: String,
    /// The system where it happened.
    pub source: String,
    /// How bad it is.
    pub severity: Severity,
    /// When the sender saw it.
    pub timestamp: Option<DateTime<Utc>>,
    /// The part of the system: names the configuration item.
    pub component: Option<String>,
    /// Anything else the sender adds; `customer` names the customer by code.
    pub custom_details: Option<Value>,
    /// The event's `links` and `images` (top-level fields of PagerDuty's body), as the incident
    /// keeps them; entries without a web address are left out.
    pub links: Vec<Link>,
}

impl EventPayload {
    /// The customer code in `custom_details.customer`, when given.
    pub fn customer_code(&self) -> Option<&str> {
        self.custom_details
            .as_ref()
            .and_then(|details| details.get("customer"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|code| !code.is_empty())
    }
}

/// A readable event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// An API token standing in for the Authorization header.
    pub routing_key: Option<String>,
    /// What happened.
    pub action: EventAction,
    /// The alert's key: as sent, else derived from source and summary.
    pub dedup_key: String,
    /// Present for triggers; optional otherwise.
    pub payload: Option<EventPayload>,
}

/// How an event's sender proved who it is (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// An `Authorization: Bearer` header.
    Header,
    /// An API token in the event's `routing_key`.
    RoutingKey,
}

/// Whether a user of `roles` may send events, proved so: integrations either way, staff by
/// their own access token in the header only (a `routing_key` is an integration's token).
pub fn may_send(roles: &Roles, proof: Proof) -> bool {
    match proof {
        Proof::Header => roles.has(Role::Integration) || roles.is_staff(),
        Proof::RoutingKey => roles.has(Role::Integration),
    }
}

/// The key of an event sent without one: the same source and summary give the same key, so a
/// repeated alert deduplicates and its resolve finds it.
pub fn derived_dedup_key(source: &str, summary: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(source.as_bytes());
    hasher.update([0]);
    hasher.update(summary.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("derived:{hex}")
}

/// Collects field errors while reading an event.
struct Reader {
    errors: Vec<FieldError>,
}

impl Reader {
    fn error(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// An optional string field: absent and `null` are `None`.
    fn text(&mut self, object: &Value, key: &str, field: &str) -> Option<String> {
        match object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.contains('\0') => {
                self.error(field, "invalid", "must not contain NUL characters");
                None
            }
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.error(field, "invalid_type", "must be a string");
                None
            }
        }
    }

    /// A required, non-blank string of at most `max` characters.
    fn required_text(
        &mut self,
        object: &Value,
        key: &str,
        field: &str,
        max: usize,
    ) -> Option<String> {
        match self.text(object, key, field) {
            None if object.get(key).is_none_or(Value::is_null) => {
                self.error(field, "required", "is required");
                None
            }
            None => None,
            Some(text) if text.trim().is_empty() => {
                self.error(field, "blank", "must not be blank");
                None
            }
            Some(text) if text.chars().count() > max => {
                self.error(field, "length", format!("must be at most {max} characters"));
                None
            }
            Some(text) => Some(text),
        }
    }

    fn code<T>(
        &mut self,
        object: &Value,
        key: &str,
        field: &str,
        allowed: &[T],
        required: bool,
    ) -> Option<T>
    where
        T: FromStr<Err = UnknownCode> + fmt::Display + Copy,
    {
        let missing = object.get(key).is_none_or(Value::is_null);
        let text = self.text(object, key, field);
        match text {
            None if missing && required => {
                self.error(field, "required", "is required");
                None
            }
            None => None,
            Some(text) => match text.parse() {
                Ok(value) => Some(value),
                Err(_) => {
                    let names: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                    self.error(
                        field,
                        "invalid",
                        format!("must be one of: {}", names.join(", ")),
                    );
                    None
                }
            },
        }
    }
}

/// Reads a PagerDuty Events API v2 body. Unknown fields are ignored; every problem is named
/// with its field, and any problem makes the whole event unreadable.
pub fn parse_event(body: &Value) -> Result<Event, Vec<FieldError>> {
    let mut reader = Reader { errors: vec![] };
    if !body.is_object() {
        reader.error(".", "invalid_type", "an event is a JSON object");
        return Err(reader.errors);
    }
    let routing_key = reader.text(body, "routing_key", "routing_key");
    let action = reader.code(body, "event_action", "event_action", EventAction::ALL, true);
    let dedup_key = reader.text(body, "dedup_key", "dedup_key");
    if let Some(key) = &dedup_key {
        let length = key.chars().count();
        if key.trim().is_empty() || length > MAX_DEDUP_KEY {
            reader.error(
                "dedup_key",
                "length",
                format!("must be 1 to {MAX_DEDUP_KEY} characters and not blank"),
            );
        }
    }
    let payload = match body.get("payload") {
        None | Some(Value::Null) => {
            if action == Some(EventAction::Trigger) {
                reader.error(
                    "payload",
                    "required",
                    "a trigger describes the fault in payload",
                );
            }
            None
        }
        Some(payload) if payload.is_object() => {
            read_payload(&mut reader, payload).map(|payload| EventPayload {
                links: read_links(body),
                ..payload
            })
        }
        Some(_) => {
            reader.error("payload", "invalid_type", "must be an object");
            None
        }
    };
    if !reader.errors.is_empty() {
        return Err(reader.errors);
    }
    let action = action.expect("a missing action is an error above");
    let dedup_key = match (dedup_key, &payload) {
        (Some(key), _) => key,
        (None, Some(payload)) => derived_dedup_key(&payload.source, &payload.summary),
        (None, None) => {
            return Err(vec![FieldError::new(
                "dedup_key",
                "required",
                "an acknowledge or resolve names its alert by dedup_key (or by payload)",
            )]);
        }
    };
    Ok(Event {
        routing_key,
        action,
        dedup_key,
        payload,
    })
}

/// PagerDuty's `links: [{href, text?}]` and `images: [{src, href?, alt?}]` as links: an image
/// is kept as the address of the image, named by its `alt`. Entries that are not web addresses
/// are dropped rather than refused: a sender never loses its event over a link.
fn read_links(body: &Value) -> Vec<Link> {
    let text = |entry: &Value, key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
    let entries = |key: &str| {
        body.get(key)
            .and_then(Value::as_array)
            .map(|list| list.iter().take(MAX_LINKS).cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let links = entries("links")
        .into_iter()
        .filter_map(|entry| Link::checked(&text(&entry, "href")?, text(&entry, "text").as_deref()));
    let images = entries("images")
        .into_iter()
        .filter_map(|entry| Link::checked(&text(&entry, "src")?, text(&entry, "alt").as_deref()));
    let mut kept: Vec<Link> = Vec::new();
    for link in links.chain(images) {
        if kept.len() < MAX_LINKS && !kept.iter().any(|k| k.href == link.href) {
            kept.push(link);
        }
    }
    kept
}

fn read_payload(reader: &mut Reader, payload: &Value) -> Option<EventPayload> {
    let summary = reader.required_text(payload, "summary", "payload.summary", MAX_SUMMARY);
    let source = reader.required_text(payload, "source", "payload.source", MAX_SUMMARY);
    let severity = reader.code(payload, "severity", "payload.severity", Severity::ALL, true);
    let timestamp = reader
        .text(payload, "timestamp", "payload.timestamp")
        .and_then(|text| match DateTime::parse_from_rfc3339(&text) {
            Ok(time) => Some(time.to_utc()),
            Err(_) => {
                reader.error("payload.timestamp", "invalid", "must be an RFC 3339 time");
                None
            }
        });
    let component = reader
        .text(payload, "component", "payload.component")
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    for key in ["group", "class"] {
        reader.text(payload, key, &format!("payload.{key}"));
    }
    let custom_details = payload
        .get("custom_details")
        .filter(|v| !v.is_null())
        .cloned();
    Some(EventPayload {
        summary: summary?,
        source: source?,
        severity: severity?,
        timestamp,
        component,
        custom_details,
        links: vec![],
    })
}

/// The first `max` characters of `text`.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The answer to one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventOutcome {
    /// The alert's key, derived when the event had none.
    #[schema(example = "alertmanager:3f2a9c1e5b7d4a60")]
    pub dedup_key: String,
    /// What the event did.
    pub result: EventResult,
    /// The incident it opened or changed; `null` when ignored.
    #[schema(example = 42)]
    pub incident_id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    pub(crate) fn trigger() -> Value {
        json!({
            "routing_key": "idt_x",
            "event_action": "trigger",
            "dedup_key": "db-1/disk",
            "payload": {
                "summary": "Disk full on his-db-01",
                "source": "his-db-01",
                "severity": "critical",
                "component": "his-db-01",
                "custom_details": {"customer": "QD-01", "free": "0%"}
            },
            "client": "Prometheus",
            "links": [{"href": "http://prometheus/alerts"}]
        })
    }

    #[test]
    fn a_pagerduty_trigger_is_read_and_unknown_fields_are_ignored() {
        let event = parse_event(&trigger()).unwrap();
        assert_eq!(event.action, EventAction::Trigger);
        assert_eq!(event.dedup_key, "db-1/disk");
        assert_eq!(event.routing_key.as_deref(), Some("idt_x"));
        let payload = event.payload.unwrap();
        assert_eq!(payload.severity, Severity::Critical);
        assert_eq!(payload.customer_code(), Some("QD-01"));
        assert_eq!(payload.component.as_deref(), Some("his-db-01"));
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let errors = parse_event(
            &json!({"event_action": "explode", "payload": {"severity": "bad", "summary": 3}}),
        )
        .unwrap_err();
        assert_eq!(
            fields(errors),
            [
                "event_action",
                "payload.summary",
                "payload.source",
                "payload.severity"
            ]
        );
        let errors = parse_event(&json!({"event_action": "trigger"})).unwrap_err();
        assert_eq!(fields(errors), ["payload"]);
        let errors = parse_event(&json!({})).unwrap_err();
        assert_eq!(fields(errors), ["event_action"]);
        assert_eq!(fields(parse_event(&json!([1])).unwrap_err()), ["."]);
        let long_key = json!({"event_action": "resolve", "dedup_key": "k".repeat(256)});
        assert_eq!(fields(parse_event(&long_key).unwrap_err()), ["dedup_key"]);
        let bad_time = json!({"event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": "info", "timestamp": "yesterday"}});
        assert_eq!(
            fields(parse_event(&bad_time).unwrap_err()),
            ["payload.timestamp"]
        );
    }

    #[test]
    fn acknowledge_and_resolve_need_a_key_but_no_payload() {
        let event = parse_event(&json!({"event_action": "resolve", "dedup_key": "k"})).unwrap();
        assert_eq!(event.payload, None);
        let errors = parse_event(&json!({"event_action": "acknowledge"})).unwrap_err();
        assert_eq!(fields(errors), ["dedup_key"]);
    }

    #[test]
    fn a_missing_key_is_derived_from_source_and_summary() {
        let mut body = trigger();
        body.as_object_mut().unwrap().remove("dedup_key");
        let first = parse_event(&body).unwrap().dedup_key;
        assert_eq!(first, parse_event(&body).unwrap().dedup_key);
        assert!(first.starts_with("derived:"));
        body["payload"]["summary"] = json!("Disk full on his-db-02");
        assert_ne!(first, parse_event(&body).unwrap().dedup_key);
        assert_ne!(derived_dedup_key("ab", "c"), derived_dedup_key("a", "bc"));
    }

    #[test]
    fn severities_map_to_levels() {
        assert_eq!(Severity::Critical.level(), Level::High);
        assert_eq!(Severity::Error.level(), Level::High);
        assert_eq!(Severity::Warning.level(), Level::Medium);
        assert_eq!(Severity::Info.level(), Level::Low);
    }
}
