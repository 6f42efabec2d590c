//! The storage writer: one thread that makes the driver's writes durable, in the order they
//! were handed over, so that the driver's loop never waits on the disk unless the core's
//! contract says it must.
//!
//! A write the driver waits for (a term or vote, a follower's append, a snapshot) is answered
//! on its own channel; a background write (the leader's own appends under parallel leader
//! writes, commit-index updates) reports on the driver's completion queue. Jobs that queued up
//! while the disk was busy are written together: one transaction and one fsync for all of
//! them, which is group commit across batches. One FIFO writer keeps every write after the
//! ones handed over before it, as the core requires of background writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stepraft::{Command, LogIndex, Persist, Term};
use tokio::sync::{mpsc, oneshot};

use super::observe::Written;
use crate::storage::{Storage, StorageError};

/// How a write ended: whether it is durable and, for the first job of each transaction, the
/// transaction's size and time (one transaction is one fsync; the metrics count each once).
#[derive(Debug)]
pub(super) struct WriteOutcome {
    /// The whole transaction's size and time, carried by its first job only.
    pub transaction: Option<(Written, Duration)>,
    pub result: Result<(), StorageError>,
}

/// A background write that finished.
#[derive(Debug)]
pub(super) struct BackgroundDone {
    /// The last entry of the leader appends it carried, to acknowledge with `Input::Persisted`.
    pub async_last: Option<(LogIndex, Term)>,
    pub outcome: WriteOutcome,
}

enum Done {
    Wait(oneshot::Sender<WriteOutcome>),
    Background(Option<(LogIndex, Term)>),
}

struct Job<T> {
    persists: Vec<Persist<T>>,
    done: Done,
}

/// The handle the driver holds; dropping it lets the thread finish what is queued and stop.
pub(super) struct Writer<T> {
    jobs: Option<std::sync::mpsc::Sender<Job<T>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T: Command + Send + Sync + 'static> Writer<T> {
    /// Starts the writer thread; background completions go to `completions`.
    pub fn start<S: Storage<T>>(
        storage: Arc<S>,
        completions: mpsc::UnboundedSender<BackgroundDone>,
    ) -> Writer<T> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job<T>>();
        let thread = std::thread::Builder::new()
            .name("stepraft-storage".into())
            .spawn(move || write_until_closed(storage.as_ref(), &queue, &completions))
            .expect("the storage thread starts");
        Writer { jobs: Some(jobs), thread: Some(thread) }
    }

    /// Hands over a write the caller waits for: the answer comes once it, and every write
    /// handed over before it, is durable. `None` when the thread is gone.
    pub fn write(&self, persists: Vec<Persist<T>>) -> Option<oneshot::Receiver<WriteOutcome>> {
        let (done, outcome) = oneshot::channel();
        self.hand_over(Job { persists, done: Done::Wait(done) })?;
        Some(outcome)
    }

    /// Hands over a background write; its completion arrives on the completion queue.
    /// `false` when the thread is gone.
    pub fn write_in_background(
        &self,
        persists: Vec<Persist<T>>,
        async_last: Option<(LogIndex, Term)>,
    ) -> bool {
        self.hand_over(Job { persists, done: Done::Background(async_last) }).is_some()
    }

    fn hand_over(&self, job: Job<T>) -> Option<()> {
        self.jobs.as_ref()?.send(job).ok()
    }

    /// Lets the thread finish every queued write, and waits for it: the storage is released
    /// (a database file lock, say) when this returns.
    pub async fn close(mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn write_until_closed<T: Command, S: Storage<T>>(
    storage: &S,
    queue: &std::sync::mpsc::Receiver<Job<T>>,
    completions: &mpsc::UnboundedSender<BackgroundDone>,
) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        jobs.extend(queue.try_iter());
        let mut persists = Vec::new();
        let mut dones = Vec::with_capacity(jobs.len());
        for job in jobs {
            dones.push(job.done);
            persists.extend(job.persists);
        }
        let written = Written::of(&persists);
        let started = Instant::now();
        let result = storage.persist(&persists);
        let elapsed = started.elapsed();
        let failure = result.as_ref().err().map(ToString::to_string);
        let mut first_result = Some(result);
        for done in dones {
            // Every job of a failed transaction failed; the first carries the storage's error.
            let (transaction, result) = match (first_result.take(), &failure) {
                (Some(result), _) => (Some((written, elapsed)), result),
                (None, None) => (None, Ok(())),
                (None, Some(failure)) => (None, Err(StorageError::Backend(failure.clone().into()))),
            };
            let outcome = WriteOutcome { transaction, result };
            match done {
                Done::Wait(answer) => {
                    let _ = answer.send(outcome);
                }
                Done::Background(async_last) => {
                    let _ = completions.send(BackgroundDone { async_last, outcome });
                }
            }
        }
    }
}
