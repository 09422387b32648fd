//! The monitoring intake queue: events that arrive together are written together.
//!
//! A storm of events costs PostgreSQL round trips and commits, not computation (BENCHMARKS.md).
//! So handlers do not write events themselves: they queue them with their sender's credential,
//! and a few writers each take whatever is waiting (up to a batch), authenticate each distinct
//! sender once, run every event through the same store path inside one transaction, and answer
//! each handler after the commit. A batch that fails as a whole is retried sender by sender,
//! each in its own transaction, so one bad event never takes its neighbours down. What an event
//! does is decided in `domain::monitoring` and written by `store::events`; this module only
//! queues and answers.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::domain::clock::Clock;
use crate::domain::monitoring::Event;
use crate::store::events::{JobAnswer, Sender};
use crate::store::incident_writes::WriteSettings;
use crate::store::{self, DbPool, StoreError};

/// Events a writer takes into one transaction at most.
const MAX_BATCH: usize = 64;
/// Writers, each holding one database connection while it writes a batch.
const WRITERS: usize = 3;
/// Requests that may wait in the queue before handlers wait to enqueue.
const QUEUE: usize = 4096;

type Answer = JobAnswer;

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
            .map_err(|_| StoreError::Unavailable("the event writers have stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::internal("an event writer dropped its answer"))?
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
            store::events::write_batch(conn, &work, &settings, now)
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
                        store::events::write_job(conn, &sender, &events, &settings, now)
                    })
                    .await;
                    let _ = job.reply.send(answer.and_then(|answer| answer));
                }
            }
        }
    }
}
