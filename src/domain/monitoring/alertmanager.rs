//! Prometheus Alertmanager (and Grafana) webhooks, read as monitoring events (SPEC §8).

use chrono::DateTime;
use serde_json::Value;

use super::{Event, EventAction, EventPayload, MAX_SUMMARY, Reader, Severity, cut};
use crate::domain::incident::Link;
use crate::domain::validation::FieldError;

/// Reads a Prometheus Alertmanager webhook body (version 4; Grafana's alerting webhook, a
/// superset, too): one event per alert (SPEC §8). Labels and annotations travel on as the
/// event's `custom_details`, so the incident's description shows them.
pub fn alertmanager_events(body: &Value) -> Result<Vec<Event>, Vec<FieldError>> {
    let mut reader = Reader { errors: vec![] };
    let Some(alerts) = body.get("alerts").and_then(Value::as_array) else {
        let (code, message) = match body.get("alerts") {
            None | Some(Value::Null) => ("required", "an Alertmanager webhook lists its alerts"),
            Some(_) => ("invalid_type", "must be an array"),
        };
        reader.error("alerts", code, message);
        return Err(reader.errors);
    };
    let mut events = Vec::with_capacity(alerts.len());
    for (index, alert) in alerts.iter().enumerate() {
        if let Some(event) = read_alert(&mut reader, alert, &format!("alerts[{index}]")) {
            events.push(event);
        }
    }
    if reader.errors.is_empty() {
        Ok(events)
    } else {
        Err(reader.errors)
    }
}

fn read_alert(reader: &mut Reader, alert: &Value, at: &str) -> Option<Event> {
    if !alert.is_object() {
        reader.error(at, "invalid_type", "an alert is an object");
        return None;
    }
    let empty = Value::Object(serde_json::Map::new());
    let labels = alert
        .get("labels")
        .filter(|l| l.is_object())
        .unwrap_or(&empty);
    let annotations = alert
        .get("annotations")
        .filter(|a| a.is_object())
        .unwrap_or(&empty);
    let label = |reader: &mut Reader, key: &str| {
        reader
            .text(labels, key, &format!("{at}.labels.{key}"))
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let fingerprint = reader.required_text(alert, "fingerprint", &format!("{at}.fingerprint"), 200);
    let action = match reader
        .text(alert, "status", &format!("{at}.status"))
        .as_deref()
    {
        Some("firing") => Some(EventAction::Trigger),
        Some("resolved") => Some(EventAction::Resolve),
        Some(_) => {
            reader.error(
                &format!("{at}.status"),
                "invalid",
                "must be firing or resolved",
            );
            None
        }
        None => {
            reader.error(&format!("{at}.status"), "required", "is required");
            None
        }
    };
    let summary = reader
        .text(annotations, "summary", &format!("{at}.annotations.summary"))
        .filter(|s| !s.trim().is_empty())
        .or_else(|| label(reader, "alertname"));
    if summary.is_none() {
        reader.error(
            &format!("{at}.labels.alertname"),
            "required",
            "an alert needs annotations.summary or labels.alertname",
        );
    }
    let source = label(reader, "instance")
        .or_else(|| label(reader, "job"))
        .unwrap_or_else(|| "alertmanager".to_owned());
    // Alertmanager severities are free text ("page", "ticket"); what is not ours is `error`.
    let severity = label(reader, "severity")
        .and_then(|s| s.to_lowercase().parse().ok())
        .unwrap_or(Severity::Error);
    let component = label(reader, "ci");
    let customer = label(reader, "customer");
    let starts_at = reader
        .text(alert, "startsAt", &format!("{at}.startsAt"))
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.to_utc());
    let mut details = serde_json::Map::new();
    if let Some(customer) = customer {
        details.insert("customer".into(), Value::String(customer));
    }
    details.insert("labels".into(), labels.clone());
    details.insert("annotations".into(), annotations.clone());
    if let Some(url) = alert.get("generatorURL").filter(|u| u.is_string()) {
        details.insert("generator_url".into(), url.clone());
    }
    Some(Event {
        routing_key: None,
        action: action?,
        dedup_key: format!("alertmanager:{}", fingerprint?),
        payload: Some(EventPayload {
            summary: cut(summary?.trim(), MAX_SUMMARY),
            source,
            severity,
            timestamp: starts_at,
            component,
            links: details
                .get("generator_url")
                .and_then(Value::as_str)
                .and_then(|url| Link::checked(url, Some("Prometheus")))
                .into_iter()
                .collect(),
            custom_details: Some(Value::Object(details)),
        }),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    fn alert(status: &str, labels: Value, annotations: Value) -> Value {
        json!({
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": "2025-01-06T08:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "3f2a9c1e5b7d4a60"
        })
    }

    #[test]
    fn each_alertmanager_alert_becomes_an_event() {
        let body = json!({
            "version": "4",
            "status": "firing",
            "alerts": [
                alert(
                    "firing",
                    json!({"alertname": "DiskFull", "instance": "his-db-01:9100", "job": "node", "severity": "warning", "customer": "QD-01", "ci": "his-db-01"}),
                    json!({"summary": "Disk almost full"}),
                ),
                alert("resolved", json!({"alertname": "Down", "job": "node", "severity": "page"}), json!({})),
                alert("firing", json!({"alertname": "Grafana rule"}), json!({})),
            ]
        });
        let events = alertmanager_events(&body).unwrap();
        assert_eq!(events.len(), 3);
        let first = &events[0];
        assert_eq!(first.action, EventAction::Trigger);
        assert_eq!(first.dedup_key, "alertmanager:3f2a9c1e5b7d4a60");
        let payload = first.payload.as_ref().unwrap();
        assert_eq!(payload.summary, "Disk almost full");
        assert_eq!(payload.source, "his-db-01:9100");
        assert_eq!(payload.severity, Severity::Warning);
        assert_eq!(payload.component.as_deref(), Some("his-db-01"));
        assert_eq!(payload.customer_code(), Some("QD-01"));

        let second = &events[1];
        assert_eq!(second.action, EventAction::Resolve);
        let payload = second.payload.as_ref().unwrap();
        assert_eq!(
            (payload.summary.as_str(), payload.source.as_str()),
            ("Down", "node")
        );
        assert_eq!(
            payload.severity,
            Severity::Error,
            "unknown severities are error"
        );
        assert_eq!(events[2].payload.as_ref().unwrap().source, "alertmanager");
    }

    #[test]
    fn unreadable_alerts_are_named_by_their_place() {
        assert_eq!(
            fields(alertmanager_events(&json!({})).unwrap_err()),
            ["alerts"]
        );
        let body = json!({"alerts": [
            alert("firing", json!({"alertname": "A"}), json!({})),
            {"status": "pending", "labels": {}, "annotations": {}},
        ]});
        assert_eq!(
            fields(alertmanager_events(&body).unwrap_err()),
            [
                "alerts[1].fingerprint",
                "alerts[1].status",
                "alerts[1].labels.alertname"
            ]
        );
    }
}
