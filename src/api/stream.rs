//! `GET /api/v1/stream`: every change as it happens, as Server-Sent Events; and the single-use
//! tickets with which a browser's `EventSource` opens it (SPEC §12).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse, get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{AuthUser, ValidQuery, bearer_token, check_credential};
use crate::api::problems;
use crate::domain::stream::{Filter, Prepared, Reader, parse_event_id, parse_types};
use crate::error::AppError;
use crate::live::{LiveEvent, Subscription};
use crate::state::AppState;
use crate::store;
use crate::store::credentials::Credential;
use crate::store::stream::{Position, Resume};

/// How long a stream ticket may wait to be used.
const TICKET_LIFETIME: TimeDelta = TimeDelta::seconds(60);

/// Events a stream that is behind reads from the database at a time, sent as one piece. Small:
/// a client that reads slowly holds at most one batch, and its connection's write buffer grows
/// to the piece. With 500 a thousand slow readers held 400 MB, with 32 323 MB
/// (`bench/stream.sh`); twelve frames stay within the 16 KiB write buffer.
const CATCH_UP_BATCH: i64 = 12;

/// Queued events sent in one chunk at most.
const QUEUED_PER_CHUNK: usize = 32;

/// What every stream tells the browser first: wait this long (ms) before reconnecting.
const RETRY_FRAME: &[u8] = b"retry: 3000\n\n";

/// Which events to receive.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only these types, comma-separated (`incident.created,note.created`); every type the
    /// caller may read when absent.
    #[param(example = "incident.created,incident.resolved,note.created")]
    pub types: Option<String>,
    /// Only events about this incident.
    pub incident_id: Option<i64>,
    /// Only events about this customer's incidents (customers: their own).
    pub customer_id: Option<i64>,
    /// A ticket from `POST /api/v1/stream/tickets`, for clients that cannot send
    /// `Authorization` (a browser's `EventSource`). Used once.
    pub ticket: Option<String>,
    /// Resume after this event, for clients that cannot send `Last-Event-ID` (a new
    /// `EventSource`); the header wins when both are given.
    #[param(example = "1042")]
    pub last_event_id: Option<String>,
}

/// Changes as they happen, as Server-Sent Events
///
/// Answers `text/event-stream` and stays open. Each event is `id: <sequence>`, `event: <type>`
/// and `data: {type, occurred_at, incident_id?, ticket_id?, entry_id?, actor_id, data}`, where
/// `data` holds the resources as the API shows them (`incident`, `note`, `escalation`,
/// `coordination_ticket`, `follow_up`, `knowledge_entry`). Events come in the order they were
/// committed, whichever instance a client is connected to. A comment line (`: heartbeat`) every
/// 15 s keeps idle connections open through proxies.
///
/// Reconnect with `Last-Event-ID` (`EventSource` sends it by itself) to receive every event
/// after that one that is still kept (`STREAM_RETENTION`, 7 days by default), then live ones;
/// an id older than that is 410, and the client should reload what it shows. Customers receive
/// their own organisation's incidents, public notes only, and published knowledge without
/// author or source; escalations, SLA alarms, coordination tickets and follow-up calls reach
/// staff only. A stream ends when its user is deactivated or signed out everywhere.
///
/// Authenticate with `Authorization: Bearer`, or, from a browser, with `?ticket=` (see
/// `POST /api/v1/stream/tickets`); a bearer token never goes into a URL.
///
/// Roles: any signed-in user; what arrives follows the caller's reading rights.
///
/// Errors: 400 for a malformed `Last-Event-ID`; 401 for a missing, used, expired or forged
/// ticket; 410 `event_expired` when `Last-Event-ID` is no longer kept; 422 for an unknown type.
#[utoipa::path(
    tag = "stream",
    security(("bearer" = [])),
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header,
            description = "The id of the last event received; the stream resumes after it.",
            example = "1042"),
    ),
    responses(
        (status = 200, description = "The stream (`text/event-stream`)",
            content_type = "text/event-stream", body = String,
            example = "retry: 3000\n\nid: 1043\nevent: incident.accepted\ndata: {\"type\":\"incident.accepted\",\"occurred_at\":\"2026-12-07T09:15:00Z\",\"incident_id\":1,\"actor_id\":2,\"data\":{\"incident\":{\"id\":1,\"number\":\"INC-000001\",\"status\":\"in_progress\"}}}\n\n: heartbeat\n\n"),
        problems::StreamErrors
    )
)]
#[get("/stream")]
pub async fn stream_events(
    state: Data<AppState>,
    req: HttpRequest,
    query: ValidQuery<StreamQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.0;
    let types = match query.types.as_deref() {
        Some(raw) => parse_types(raw).map_err(|unknown| {
            AppError::invalid_field(
                "types",
                "unknown",
                format!("`{unknown}` is not an event type"),
            )
        })?,
        None => Vec::new(),
    };
    let filter = Filter {
        types,
        incident_id: query.incident_id,
        customer_id: query.customer_id,
    };
    let asked = match req.headers().get("Last-Event-ID") {
        Some(value) => Some(value.to_str().unwrap_or("")),
        None => query.last_event_id.as_deref(),
    };
    let resume = match asked {
        Some(value) => Some(parse_event_id(value).ok_or_else(|| {
            AppError::BadRequest(
                "Last-Event-ID must be the id of an event this stream sent.".into(),
            )
        })?),
        None => None,
    };
    // The request is read whole before a ticket is taken, so a mistake in it does not use the
    // ticket up.
    let credential = match &query.ticket {
        Some(ticket) => redeem(&state, ticket).await?,
        None => check_credential(&state, &bearer_token(&req)?)?,
    };
    let caller = load_caller(&state, credential.clone()).await?;
    let reader = Reader::of(&caller.roles, caller.customer_id);
    // Subscribed before the database is read: whatever settles from here on is either in the
    // read or in the subscription (or both, and sent once).
    let live = state.live.subscribe(reader, filter.clone());
    let start = match resume {
        Some(id) => resume_point(&state, id).await?,
        None => store::run(&state.pool, store::stream::head).await?,
    };
    let session = Session {
        state: state.clone(),
        credential,
        reader,
        filter,
        live,
        last: start,
        catching_up: resume.is_some(),
        heartbeat: heartbeat(state.settings.stream_heartbeat),
        started: false,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // nginx would otherwise hold events back to fill its buffers.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(futures_util::stream::unfold(session, |mut session| async {
            let chunk = session.next_chunk().await?;
            Some((Ok::<_, std::convert::Infallible>(chunk), session))
        })))
}

/// A stream ticket.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"ticket": "ist_0cJ8kQ2mR4xYb7nV1pL3sT6wE9aF5hD2gK8jM4zX1cQ", "expires_at": "2026-12-07T09:16:00Z"}))]
pub struct StreamTicket {
    /// Pass as `?ticket=` to `GET /api/v1/stream`, once, before `expires_at`.
    pub ticket: String,
    /// Sixty seconds from now.
    #[serde(serialize_with = "crate::domain::timestamps::serialize")]
    pub expires_at: DateTime<Utc>,
}

/// Get a single-use ticket to open the stream from a browser
///
/// A browser's `EventSource` cannot send `Authorization`, and a bearer token must never go
/// into a URL (URLs end up in logs and histories). Ask for a ticket with the token, then open
/// `new EventSource("/api/v1/stream?ticket=" + ticket)`. The ticket opens one stream, within
/// 60 seconds, as the caller; for a reconnection, ask for a new one.
///
/// Roles: any signed-in user.
#[utoipa::path(
    tag = "stream",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The ticket", body = StreamTicket),
        problems::SignedInErrors
    )
)]
#[post("/stream/tickets")]
pub async fn create_stream_ticket(
    state: Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, AppError> {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let ticket = format!("ist_{}", URL_SAFE_NO_PAD.encode(random));
    let expires_at = state.clock.now() + TICKET_LIFETIME;
    let digest = ticket_digest(&ticket);
    let holder = (caller.id, caller.row.token_generation);
    store::run(&state.pool, move |conn| {
        store::stream::issue_ticket(conn, &digest, holder, expires_at)
    })
    .await?;
    Ok(HttpResponse::Created().json(StreamTicket { ticket, expires_at }))
}

/// Ticks every `period`, first after one period; a late tick is not made up for.
fn heartbeat(period: std::time::Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// The digest under which a ticket is kept.
fn ticket_digest(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}

/// The credential a ticket was issued under; 401 for an unknown, used or expired one.
async fn redeem(state: &AppState, ticket: &str) -> Result<Credential, AppError> {
    let digest = ticket_digest(ticket);
    let now = state.clock.now();
    store::run(&state.pool, move |conn| {
        store::stream::redeem_ticket(conn, &digest, now)
    })
    .await?
    .ok_or_else(|| {
        AppError::Unauthorized(
            "The stream ticket is unknown, used or expired; ask for a new one.".into(),
        )
    })
}

/// The user `credential` stands for now; 401 when it no longer does.
async fn load_caller(state: &AppState, credential: Credential) -> Result<AuthUser, AppError> {
    let now = state.clock.now();
    let user = store::credentials::caller(&state.pool, &state.credentials, credential, now).await?;
    Ok(AuthUser::from(user))
}

/// Where a client resuming after event `id` starts; 410 when that event is no longer kept.
async fn resume_point(state: &AppState, id: i64) -> Result<Position, AppError> {
    let retention =
        TimeDelta::from_std(state.settings.stream_retention).map_err(AppError::internal)?;
    let retained_since = state.clock.now() - retention;
    let resume = store::run(&state.pool, move |conn| {
        store::stream::resume_after(conn, id, retained_since)
    })
    .await?;
    match resume {
        Resume::After(position) => Ok(position),
        Resume::Gone | Resume::Unknown => Err(AppError::Gone {
            code: "event_expired",
            detail: format!(
                "Event {id} is no longer kept (events are kept for {}); reload what you show, \
                 then open the stream without Last-Event-ID.",
                humantime::format_duration(state.settings.stream_retention)
            ),
        }),
    }
}

/// An event's frame as one reader receives it, sent without copying.
struct SharedFrame {
    event: Arc<LiveEvent>,
    reader: Reader,
}

impl AsRef<[u8]> for SharedFrame {
    fn as_ref(&self) -> &[u8] {
        self.event
            .event
            .frame_for(self.reader)
            .unwrap_or_default()
            .as_bytes()
    }
}

/// One open stream.
struct Session {
    state: Data<AppState>,
    credential: Credential,
    reader: Reader,
    filter: Filter,
    live: Subscription,
    /// The last position considered (sent or filtered out).
    last: Position,
    /// Reading from the database rather than from the broadcast.
    catching_up: bool,
    heartbeat: tokio::time::Interval,
    started: bool,
}

impl Session {
    /// The next piece to send; `None` ends the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            return Some(Bytes::from_static(RETRY_FRAME));
        }
        loop {
            if self.live.fell_behind() {
                self.catching_up = true;
            }
            if self.catching_up {
                match self.catch_up().await {
                    Ok(Some(chunk)) => return Some(chunk),
                    Ok(None) => continue,
                    Err(err) => {
                        log::warn!("a stream could not read missed events: {err}");
                        return None;
                    }
                }
            }
            tokio::select! {
                received = self.live.queue.recv() => {
                    let event = received?;
                    if event.position <= self.last {
                        continue;
                    }
                    self.last = event.position;
                    return Some(self.with_queued(event));
                },
                _ = self.heartbeat.tick() => {
                    // The caller is read again: deactivation, a password change or a revoked
                    // token ends the stream as it ends every other request.
                    if load_caller(&self.state, self.credential.clone()).await.is_err() {
                        return None;
                    }
                    return Some(Bytes::from_static(b": heartbeat\n\n"));
                }
            }
        }
    }

    /// `first` and, when more wait in the queue (the stream's client or the server is behind
    /// the writes), up to [`QUEUED_PER_CHUNK`] of them in the same chunk: one wake-up and one
    /// write for the lot instead of one each. A lone frame is shared by every stream it goes
    /// to, not copied.
    fn with_queued(&mut self, first: Arc<LiveEvent>) -> Bytes {
        fn frame(event: &LiveEvent, reader: Reader) -> &[u8] {
            event.event.frame_for(reader).unwrap_or_default().as_bytes()
        }
        let mut chunk: Option<Vec<u8>> = None;
        for _ in 1..QUEUED_PER_CHUNK {
            let Ok(next) = self.live.queue.try_recv() else {
                break;
            };
            if next.position <= self.last {
                continue;
            }
            self.last = next.position;
            let chunk = chunk.get_or_insert_with(|| frame(&first, self.reader).to_vec());
            chunk.extend_from_slice(frame(&next, self.reader));
        }
        match chunk {
            Some(chunk) => Bytes::from(chunk),
            None => Bytes::from_owner(SharedFrame {
                event: first,
                reader: self.reader,
            }),
        }
    }

    /// The next batch of events after `last` from the database, as one chunk (`None` when the
    /// batch held nothing for this client); stops catching up when the batch was the last.
    async fn catch_up(&mut self) -> Result<Option<Bytes>, AppError> {
        let from = self.last;
        let batch = store::run(&self.state.pool, move |conn| {
            store::stream::after(conn, from, CATCH_UP_BATCH)
        })
        .await?;
        if batch.events.len() < CATCH_UP_BATCH as usize {
            self.catching_up = false;
        }
        let mut chunk = Vec::new();
        for (position, stored) in batch.events {
            self.last = position;
            let event = Prepared::new(stored);
            if let Some(frame) = self.frame(&event) {
                chunk.extend_from_slice(frame.as_bytes());
            }
        }
        Ok((!chunk.is_empty()).then(|| Bytes::from(chunk)))
    }

    fn frame<'e>(&self, event: &'e Prepared) -> Option<&'e str> {
        if !self.filter.passes(event) {
            return None;
        }
        event.frame_for(self.reader)
    }
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(stream_events).service(create_stream_ticket);
}
