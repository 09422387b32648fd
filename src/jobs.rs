//! Background work of every server instance: the SLA watcher, the webhook delivery worker and
//! the clean-up of expired idempotency keys. They coordinate through the database, so any
//! number of instances can run them.

use std::time::{Duration, Instant};

use actix_web::web::Data;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::escalation::SlaTrigger;
use crate::domain::role::{Role, Roles};
use crate::domain::workflow::{Caller, IncidentCommand};
use crate::mail::{Mailer, NotSent};
use crate::outbound::TargetCheck;
use crate::state::AppState;
use crate::store;
use crate::store::StoreError;
use crate::store::notifications::Attempt;
use crate::store::webhooks::{AttemptOutcome, Claimed, DeliveryState};

/// How often expired idempotency keys are deleted.
const IDEMPOTENCY_SWEEP: Duration = Duration::from_secs(15 * 60);

/// Starts the workers on the current Tokio runtime.
pub fn spawn(state: Data<AppState>) {
    let sweeper = state.clone();
    tokio::spawn(async move {
        loop {
            if let Err(err) = sweep_idempotency_keys(&sweeper).await {
                log::warn!("deleting expired idempotency keys failed: {err}");
            }
            if let Err(err) = prune_stream(&sweeper).await {
                log::warn!("pruning the live stream's events failed: {err}");
            }
            tokio::time::sleep(IDEMPOTENCY_SWEEP).await;
        }
    });
    let sweeper = state.clone();
    tokio::spawn(async move {
        loop {
            if let Err(err) = sweep_attachments(&sweeper).await {
                log::warn!("removing unused attachment bytes failed: {err}");
            }
            tokio::time::sleep(sweeper.settings.attachment_sweep_interval).await;
        }
    });
    if let Some(replica) = state.replica.clone() {
        let primary = state.pool.clone();
        tokio::spawn(async move {
            loop {
                let (replica, primary) = (replica.clone(), primary.clone());
                if let Err(err) = actix_web::web::block(move || replica.check(&primary)).await {
                    log::warn!("checking the read replica failed: {err}");
                }
                tokio::time::sleep(store::replica::CHECK_INTERVAL).await;
            }
        });
    }
    let indexer = state.clone();
    tokio::spawn(async move {
        match index_unsearchable(&indexer).await {
            Ok(0) => {}
            Ok(n) => log::info!("indexed {n} incidents for search"),
            Err(err) => log::warn!("indexing incidents for search failed: {err}"),
        }
        match rewrite_abbreviations(&indexer).await {
            Ok((0, 0)) => {}
            Ok((incidents, entries)) => log::info!(
                "wrote again the search documents of {incidents} incidents and {entries} \
                 knowledge entries that name abbreviations such as HIS or IT"
            ),
            Err(err) => log::warn!("writing search documents again failed: {err}"),
        }
    });
    let watcher = state.clone();
    tokio::spawn(async move {
        loop {
            if let Err(err) = scan_sla(&watcher).await {
                log::warn!("SLA scan failed: {err}");
            }
            if let Err(err) = remind_unconfirmed(&watcher).await {
                log::warn!("queueing confirmation reminders failed: {err}");
            }
            tokio::time::sleep(watcher.settings.sla_scan_interval).await;
        }
    });
    let postman = state.clone();
    tokio::spawn(async move {
        let mailer = match Mailer::new(&postman.settings, postman.confirmations.clone()) {
            Ok(mailer) => mailer,
            Err(err) => {
                log::error!("e-mail to reporters is off: {err}");
                return;
            }
        };
        if !mailer.sends() {
            log::info!("SMTP_URL is not set: e-mail to reporters is recorded as skipped");
        }
        loop {
            match send_notifications(&postman, &mailer).await {
                // A full batch: more may be waiting.
                Ok(n) if n >= MAIL_BATCH as usize => continue,
                Ok(_) => {}
                Err(err) => log::warn!("e-mail round failed: {err}"),
            }
            tokio::time::sleep(postman.settings.webhook_poll_interval).await;
        }
    });
    tokio::spawn(async move {
        let client = match crate::outbound::delivery_client(state.settings.webhook_allow_private) {
            Ok(client) => client,
            Err(err) => {
                log::error!("webhook delivery is off: cannot build an HTTP client: {err}");
                return;
            }
        };
        loop {
            match deliver_due(&state, &client).await {
                // A full batch: more may be waiting.
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => {}
                Err(err) => log::warn!("webhook delivery round failed: {err}"),
            }
            tokio::time::sleep(state.settings.webhook_poll_interval).await;
        }
    });
}

const BATCH: i64 = 20;

/// Incidents indexed for search per transaction while catching up.
const SEARCH_INDEX_BATCH: i64 = 1_000;

/// Indexes, batch by batch, the incidents written before incident search existed (a database
/// upgraded to it): they become searchable within seconds of start-up, the newest writes at
/// once. Only while the migration's marker says some may lack a document, so a start-up after
/// that looks for none. Returns how many it indexed.
async fn index_unsearchable(state: &AppState) -> Result<usize, StoreError> {
    if !store::run(&state.pool, store::incident_text::backfill_pending).await? {
        return Ok(0);
    }
    let mut indexed = 0;
    loop {
        let n = store::run(&state.pool, |conn| {
            store::incident_text::backfill(conn, SEARCH_INDEX_BATCH)
        })
        .await?;
        indexed += n;
        if n == 0 {
            store::run(&state.pool, store::incident_text::finish_backfill).await?;
            return Ok(indexed);
        }
    }
}

/// Writes again, batch by batch, the search documents written before upper-case abbreviations
/// that are stop words (`HIS`, `IT`) were kept (`domain::search::kept_abbreviations`): those of
/// incidents and knowledge entries whose text holds one. Only while migration 000026's marker
/// is there. Returns how many incidents and entries it wrote.
async fn rewrite_abbreviations(state: &AppState) -> Result<(usize, usize), StoreError> {
    if !store::run(&state.pool, store::incident_text::rewrite_pending).await? {
        return Ok((0, 0));
    }
    type Rewrite = fn(&mut store::Connection, &str, i64, i64) -> Result<Vec<i64>, StoreError>;
    let pattern = crate::domain::search::abbreviations_pattern();
    let mut written = [0; 2];
    let rewrites: [Rewrite; 2] = [
        store::incident_text::rewrite_matching,
        store::knowledge::rewrite_matching,
    ];
    for (rewrite, written) in rewrites.into_iter().zip(&mut written) {
        let mut after = 0;
        loop {
            let pattern = pattern.clone();
            let ids = store::run(&state.pool, move |conn| {
                rewrite(conn, &pattern, after, SEARCH_INDEX_BATCH)
            })
            .await?;
            *written += ids.len();
            match ids.last() {
                Some(last) if ids.len() as i64 == SEARCH_INDEX_BATCH => after = *last,
                _ => break,
            }
        }
    }
    store::run(&state.pool, store::incident_text::finish_rewrite).await?;
    Ok((written[0], written[1]))
}

/// Messages claimed at a time by one sender.
const MAIL_BATCH: i64 = 10;

/// How long a sender owns what it claimed: long enough to try every message of a batch against
/// a mail server that lets each attempt run into its time limit, so that no other instance
/// takes one over while it is still to be sent.
const MAIL_LEASE_SECS: i32 = MAIL_BATCH as i32 * crate::mail::SEND_TIMEOUT.as_secs() as i32 + 60;

/// Deletes idempotency keys past their 24 hours, and failed sign-ins that no longer count;
/// returns how many rows went.
pub async fn sweep_idempotency_keys(state: &AppState) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let stale_failures = crate::auth::throttle::window_start(now);
    store::run(&state.pool, move |conn| {
        Ok(store::idempotency::delete_expired(conn, now)?
            + store::sign_in_failures::prune(conn, stale_failures)?)
    })
    .await
}

/// Removes attachment bytes no record names: of deleted files, and of uploads abandoned longer
/// than `ATTACHMENT_UPLOAD_TIMEOUT` ago (a crashed server, a dropped connection). Returns how
/// many stored files went. Several instances may sweep at once: each skips the rows another
/// holds.
pub async fn sweep_attachments(state: &AppState) -> Result<usize, StoreError> {
    let abandoned_after = state.settings.attachment_upload_timeout;
    let removed = store::run(&state.pool, move |conn| {
        store::attachments::collect_garbage(conn, abandoned_after)
    })
    .await?;
    let mut count = removed.len();
    if count > 0 {
        state.chunks.forget(removed).await?;
    }
    // Objects whose row went without them (a sweep or a removal cut short before it forgot
    // them): only an outside store can hold such bytes.
    if let Some(s3) = state.chunks.as_s3() {
        let stored = s3.stored_contents(abandoned_after).await?;
        let orphans = store::run(&state.pool, move |conn| {
            store::attachments::without_rows(conn, &stored)
        })
        .await?;
        count += orphans.len();
        if !orphans.is_empty() {
            state.chunks.forget(orphans).await?;
        }
    }
    Ok(count)
}

/// Events pruned per statement: a long backlog goes in several short transactions.
const PRUNE_BATCH: i64 = 5_000;

/// Deletes events older than `STREAM_RETENTION` (with their finished webhook deliveries) and
/// expired stream tickets; returns how many events went. Several instances may prune at once:
/// each skips the rows another one holds.
pub async fn prune_stream(state: &AppState) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let retention = chrono::TimeDelta::from_std(state.settings.stream_retention)
        .map_err(StoreError::internal)?;
    let cutoff = now - retention;
    store::run(&state.pool, move |conn| {
        store::stream::prune_tickets(conn, now)?;
        let mut pruned = 0;
        loop {
            let batch = store::stream::prune(conn, cutoff, PRUNE_BATCH)?;
            pruned += batch;
            if batch < PRUNE_BATCH as usize {
                return Ok(pruned);
            }
        }
    })
    .await
}

/// One SLA scan: raises `sla_warning` and `sla_breach` hierarchical escalations that are due.
/// Returns how many were raised. Each escalation is unique per incident, trigger and deadline
/// in the schema, so concurrent scans by several instances never double it.
pub async fn scan_sla(state: &AppState) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let percent = state.settings.sla_warning_percent;
    let candidates = store::run(&state.pool, move |conn| {
        store::incidents::sla_candidates(conn, now, percent, 500)
    })
    .await?;
    // The watcher acts for the incident managers; the decision is the domain's, as for any
    // other write, and refuses nothing it does not have to (a resolved incident is skipped).
    let watcher = Caller {
        id: None,
        name: "SLA watcher".to_owned(),
        roles: Roles::new([Role::IncidentManager]),
        customer_id: None,
    };
    let settings = state.write_settings();
    let mut raised = 0;
    for candidate in candidates {
        let triggers = [
            (SlaTrigger::SlaWarning, candidate.warn),
            (SlaTrigger::SlaBreach, candidate.breach),
        ];
        for (trigger, due) in triggers {
            if !due {
                continue;
            }
            let id = candidate.id;
            let (watcher, settings) = (watcher.clone(), settings.clone());
            let command = IncidentCommand::SlaEscalation {
                trigger,
                warning_percent: percent,
            };
            let applied = store::run(&state.pool, move |conn| {
                store::incident_writes::execute(conn, id, None, &watcher, command, &settings, now)
            })
            .await?;
            if applied.escalation.is_some() {
                raised += 1;
                log::info!(
                    "SLA watcher: {trigger} escalation for incident {}",
                    applied.incident.number
                );
            }
        }
    }
    Ok(raised)
}

/// Queues the confirmation reminders that are due (SPEC §12); returns how many.
pub async fn remind_unconfirmed(state: &AppState) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let after = chrono::TimeDelta::from_std(state.settings.confirmation_reminder_after)
        .map_err(StoreError::internal)?;
    store::run(&state.pool, move |conn| {
        store::notifications::queue_reminders(conn, now, after)
    })
    .await
}

/// One round of the e-mail sender: without a mail server every pending message is recorded as
/// skipped; with one, the due messages are claimed, composed from the incident as it is now,
/// and sent. Returns how many messages were handled.
pub async fn send_notifications(state: &AppState, mailer: &Mailer) -> Result<usize, StoreError> {
    if !mailer.sends() {
        return store::run(&state.pool, |conn| {
            store::notifications::skip_pending(conn, "no mail server is configured (SMTP_URL)")
        })
        .await
        .map(|skipped| skipped.len());
    }
    let claimed = store::run(&state.pool, |conn| {
        store::notifications::claim_due(conn, MAIL_BATCH, MAIL_LEASE_SECS)
    })
    .await?;
    let count = claimed.len();
    for message in claimed {
        let attempt = match mailer.compose(&message) {
            Ok(composed) => mailer.send(composed).await,
            Err(not_sent) => Err(not_sent),
        };
        let attempt = match attempt {
            Ok(()) => Attempt::Sent,
            Err(NotSent::Skip(why)) => Attempt::Skipped(why),
            Err(NotSent::Fail(why)) => {
                log::warn!("e-mail {} to a reporter failed: {why}", message.id);
                Attempt::Failed(why)
            }
        };
        let retry_after = chrono::TimeDelta::from_std(retry_wait(
            state.settings.notification_retry_base,
            message.attempts,
        ))
        .unwrap_or(chrono::TimeDelta::days(1));
        let max_attempts = state.settings.notification_max_attempts as i32;
        let id = message.id;
        store::run(&state.pool, move |conn| {
            store::notifications::record(conn, id, &attempt, max_attempts, retry_after)
        })
        .await?;
    }
    Ok(count)
}

/// The wait after the failure of attempt number `attempts + 1`: `base`, doubled for each earlier
/// attempt, a day at most.
fn retry_wait(base: Duration, attempts: i32) -> Duration {
    let doubled = base.saturating_mul(1_u32 << attempts.clamp(0, 20));
    doubled.min(Duration::from_secs(86_400))
}

/// `X-Incident-Desk-Signature` for `body` sent at `timestamp`: `t=<unix seconds>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Sends the deliveries that are due; returns how many were attempted.
pub async fn deliver_due(state: &AppState, client: &reqwest::Client) -> Result<usize, StoreError> {
    let claimed = store::run(&state.pool, |conn| {
        store::webhooks::claim_due(conn, BATCH, 60)
    })
    .await?;
    let count = claimed.len();
    for delivery in claimed {
        let attempt = delivery.attempts;
        let outcome = send(client, &delivery, state.settings.webhook_allow_private).await;
        let retry_ms =
            state.settings.webhook_retry_base.as_millis() as i64 * (1_i64 << attempt.clamp(0, 20));
        let max_attempts = state.settings.webhook_max_attempts as i32;
        let id = delivery.delivery_id;
        let recorded = outcome.clone();
        let now_stands = store::run(&state.pool, move |conn| {
            store::webhooks::record_attempt(conn, id, &recorded, max_attempts, retry_ms)
        })
        .await?;
        let label = match now_stands {
            DeliveryState::Delivered => "delivered",
            DeliveryState::GivenUp => "given_up",
            DeliveryState::Retrying => "retrying",
        };
        state.metrics.webhook_attempt(label);
    }
    Ok(count)
}

/// The body of a delivery, serialised straight from the stored event (no copy of `data`).
#[derive(serde::Serialize)]
struct Envelope<'a> {
    id: i64,
    #[serde(rename = "type")]
    event_type: &'a str,
    occurred_at: chrono::DateTime<Utc>,
    data: &'a serde_json::Value,
}

async fn send(client: &reqwest::Client, delivery: &Claimed, allow_private: bool) -> AttemptOutcome {
    let started = Instant::now();
    let elapsed = |started: Instant| started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let refused = |error: String| AttemptOutcome {
        status_code: None,
        error: Some(error),
        delivered: false,
        duration_ms: 0,
    };
    if !delivery.active {
        return refused("the webhook is inactive".into());
    }
    // Checked again at delivery: the name may resolve elsewhere now than at subscription. The
    // client's resolver holds the connection to the checked addresses; this check also covers
    // literal addresses and names a proxy would resolve.
    if !allow_private {
        match crate::outbound::check_target(&delivery.url).await {
            TargetCheck::Allowed => {}
            TargetCheck::Refused(reason) | TargetCheck::Unresolved(reason) => {
                log::warn!(
                    "webhook delivery {} refused: {reason}",
                    delivery.delivery_id
                );
                return refused(format!("refused: {reason}"));
            }
        }
    }
    let body = serde_json::to_string(&Envelope {
        id: delivery.event_id,
        event_type: &delivery.event_type,
        occurred_at: delivery.occurred_at,
        data: &delivery.data,
    })
    .unwrap_or_default();
    let timestamp = Utc::now().timestamp();
    let result = client
        .post(&delivery.url)
        .header("Content-Type", "application/json")
        .header("X-Incident-Desk-Event", &delivery.event_type)
        .header("X-Incident-Desk-Delivery", delivery.delivery_id.to_string())
        .header(
            "X-Incident-Desk-Signature",
            signature(&delivery.secret, timestamp, &body),
        )
        .body(body)
        .send()
        .await;
    match result {
        Ok(response) => {
            let status = response.status();
            if status.is_redirection() {
                // Not followed: a public receiver must not bounce deliveries inward.
                log::warn!(
                    "webhook delivery {} answered {status}; redirects are not followed",
                    delivery.delivery_id
                );
            }
            AttemptOutcome {
                status_code: Some(i32::from(status.as_u16())),
                error: (!status.is_success()).then(|| format!("the receiver answered {status}")),
                delivered: status.is_success(),
                duration_ms: elapsed(started),
            }
        }
        Err(err) => AttemptOutcome {
            status_code: None,
            error: Some(format!("request failed: {err}")),
            delivered: false,
            duration_ms: elapsed(started),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_a_day() {
        let base = Duration::from_secs(30);
        assert_eq!(retry_wait(base, 0), base);
        assert_eq!(retry_wait(base, 2), Duration::from_secs(120));
        assert_eq!(retry_wait(base, 40), Duration::from_secs(86_400));
    }

    #[test]
    fn signatures_follow_the_documented_scheme() {
        // HMAC-SHA256("secret", "1700000000.{}") computed independently (Python hmac module).
        assert_eq!(
            signature("secret", 1_700_000_000, "{}"),
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
