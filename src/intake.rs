//! The monitoring intake queue: events that arrive together are written together.
//!
//! A storm of events costs PostgreSQL round trips and commits, not computation (BENCHMARKS.md).
//! So handlers do not write events themselves: they queue them with their sender's credential,
//! and a few writers each take whatever is waiting (up to a batch), authenticate each distinct
//! sender once, run every event through the same store path as before inside one transaction,
//! and answer each handler after the commit. A batch that fails as a whole is retried event by
//! event, each in its own transaction, so one bad event never takes its neighbours down.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::domain::clock::Clock;
use crate::domain::monitoring::{Event, EventOutcome};
use crate::domain::role::Role;
use crate::domain::workflow::Caller;
use crate::error::AppError;
use crate::store::credentials::Credential;
use crate::store::incident_writes::WriteSettings;
use crate::store::users::UserRow;
use crate::store::{self, DbPool};

/// Events a writer takes into one transaction at most.
const MAX_BATCH: usize = 64;
/// Writers, each holding one database connection while it writes a batch.
const WRITERS: usize = 3;
/// Requests that may wait in the queue before handlers wait to enqueue.
const QUEUE: usize = 4096;

/// Who sends events, and how they proved it (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sender {
    /// An `Authorization` header: an integration token or a staff access token.
    Header(Credential),
    /// An event's `routing_key`: an integration API token only.
    RoutingKey(Credential),
}

impl Sender {
    /// The caller this sender is, when it may send events.
    fn caller(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Caller, AppError> {
        let user = match self {
            Sender::Header(credential) => {
                let user = credential.load(conn, now)?.0;
                let roles = user.roles();
                if !(roles.has(Role::Integration) || roles.is_staff()) {
                    return Err(AppError::forbidden(
                        "Events are posted by integrations and staff.",
                    ));
                }
                user
            }
            Sender::RoutingKey(credential) => {
                let user = credential.load(conn, now).map_err(|_| no_routing_key())?.0;
                if !user.roles().has(Role::Integration) {
                    return Err(no_routing_key());
                }
                user
            }
        };
        Ok(caller_of(&user))
    }
}

/// 401 for an event that names no usable sender.
pub fn no_routing_key() -> AppError {
    AppError::Unauthorized(
        "Send an Authorization: Bearer header, or an API token of role integration as routing_key."
            .into(),
    )
}

fn caller_of(user: &UserRow) -> Caller {
    Caller {
        id: Some(user.id),
        name: user.display_name.clone(),
        roles: user.roles(),
        customer_id: user.customer_id,
    }
}

type Answer = Result<Vec<EventOutcome>, AppError>;

struct Job {
    sender: Sender,
    events: Vec<Event>,
    reply: oneshot::Sender<Answer>,
}

/// The queue handlers put events into.
#[derive(Clone)]
pub struct Intake {
    jobs: mpsc::Sender<Job>,
}

impl Intake {
    /// Starts the writers on the current Tokio runtime.
    pub fn start(pool: DbPool, settings: WriteSettings, clock: Arc<dyn Clock>) -> Intake {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..WRITERS {
            let writer = Writer {
                queue: queue.clone(),
                pool: pool.clone(),
                settings: settings.clone(),
                clock: clock.clone(),
            };
            tokio::spawn(writer.run());
        }
        Intake { jobs }
    }

    /// Authenticates `sender` and runs `events` in order; answers once they are committed.
    pub async fn submit(&self, sender: Sender, events: Vec<Event>) -> Answer {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            sender,
            events,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| AppError::Unavailable("the event writers have stopped".into()))?;
        answer
            .await
            .map_err(|_| AppError::internal("an event writer dropped its answer"))?
    }
}

struct Writer {
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    pool: DbPool,
    settings: WriteSettings,
    clock: Arc<dyn Clock>,
}

impl Writer {
    async fn run(self) {
        loop {
            let mut jobs = Vec::new();
            {
                let mut queue = self.queue.lock().await;
                match queue.recv().await {
                    Some(job) => jobs.push(job),
                    None => return,
                }
                let mut events = jobs[0].events.len();
                while events < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(job) => {
                            events += job.events.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
            }
            self.write(jobs).await;
        }
    }

    async fn write(&self, jobs: Vec<Job>) {
        let work: Vec<(Sender, Vec<Event>)> = jobs
            .iter()
            .map(|job| (job.sender.clone(), job.events.clone()))
            .collect();
        let settings = self.settings.clone();
        let now = self.clock.now();
        let batch = store::run(&self.pool, move |conn| {
            conn.transaction(|conn| write_batch(conn, &work, &settings, now))
        })
        .await;
        match batch {
            Ok(answers) => {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(answer);
                }
            }
            Err(err) if jobs.len() == 1 => {
                let job = jobs.into_iter().next().expect("one job");
                let _ = job.reply.send(Err(err));
            }
            // Something failed the whole batch (a lock wait that deadlocked with another writer,
            // say): each job again on its own, so only the one at fault fails.
            Err(err) => {
                log::debug!("an event batch failed ({err}); writing its jobs one by one");
                for job in jobs {
                    let settings = self.settings.clone();
                    let now = self.clock.now();
                    let (sender, events) = (job.sender, job.events);
                    let answer = store::run(&self.pool, move |conn| {
                        conn.transaction(|conn| write_job(conn, &sender, &events, &settings, now))
                    })
                    .await;
                    let _ = job.reply.send(answer.and_then(|answer| answer));
                }
            }
        }
    }
}

/// Writes every job of a batch in the caller's transaction. A sender that may not send gets its
/// refusal; any other failure fails the batch.
fn write_batch(
    conn: &mut PgConnection,
    work: &[(Sender, Vec<Event>)],
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<Vec<Answer>, AppError> {
    let mut callers: HashMap<&Sender, Caller> = HashMap::new();
    let mut answers: Vec<Answer> = Vec::with_capacity(work.len());
    for (sender, _) in work {
        if callers.contains_key(sender) {
            answers.push(Ok(vec![]));
            continue;
        }
        match sender.caller(conn, now) {
            Ok(caller) => {
                callers.insert(sender, caller);
                answers.push(Ok(vec![]));
            }
            Err(refusal @ (AppError::Unauthorized(_) | AppError::Forbidden(_))) => {
                answers.push(Err(refusal));
            }
            Err(failure) => return Err(failure),
        }
    }
    let accepted: Vec<usize> = (0..work.len())
        .filter(|job| answers[*job].is_ok())
        .collect();
    let batch: Vec<(&Caller, &Event)> = accepted
        .iter()
        .flat_map(|job| {
            let (sender, events) = &work[*job];
            let caller = &callers[sender];
            events.iter().map(move |event| (caller, event))
        })
        .collect();
    let mut answered = store::events::ingest_batch(conn, &batch, settings, now)?.into_iter();
    let mut outcomes: Vec<Vec<EventOutcome>> = vec![vec![]; work.len()];
    for job in accepted {
        outcomes[job] = answered.by_ref().take(work[job].1.len()).collect();
    }
    Ok(answers
        .into_iter()
        .zip(outcomes)
        .map(|(answer, outcomes)| answer.map(|_| outcomes))
        .collect())
}

/// One job in a transaction of its own: its sender, then its events in order. The outer
/// `Result` fails the transaction; the inner one is the job's answer.
fn write_job(
    conn: &mut PgConnection,
    sender: &Sender,
    events: &[Event],
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<Answer, AppError> {
    let caller = match sender.caller(conn, now) {
        Ok(caller) => caller,
        Err(refusal @ (AppError::Unauthorized(_) | AppError::Forbidden(_))) => {
            return Ok(Err(refusal));
        }
        Err(failure) => return Err(failure),
    };
    let batch: Vec<(&Caller, &Event)> = events.iter().map(|event| (&caller, event)).collect();
    let outcomes = store::events::ingest_batch(conn, &batch, settings, now)?;
    Ok(Ok(outcomes))
}
