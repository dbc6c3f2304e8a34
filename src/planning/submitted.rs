//! Plans answered `submitted` and finished in the background, on the replica that took them:
//! polled until done (the finished answer is handed over once), cancelled, or dropped when their
//! plan id expires. A replica that does not hold a plan plans its id again (plan ids are signed
//! and name what to plan), so polling works on every replica.
//!
//! Owns: the background plans of this replica and their states. Must not touch: what a plan
//! computes, or who may poll it (plan ids are checked before).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;

use super::ScanTasks;
use super::runtime::PlanningRuntime;
use crate::catalog::CatalogError;

/// Background plans kept at once on a replica (each also holds its memory reservation).
const MAX_KEPT: u64 = 10_000;

/// How long a background plan is kept at most: one still running then stops, and a finished
/// one nobody polled gives back its memory (Iceberg Java gives up polling after 5 minutes).
pub const MAX_KEPT_FOR: Duration = Duration::from_secs(600);

/// Where a background plan is.
#[derive(Debug)]
pub enum Progress {
    /// Still planning.
    Running,
    /// Done: the answer, handed over to the first poll that finds it.
    Done(Result<ScanTasks, CatalogError>),
    /// Cancelled by its client.
    Cancelled,
}

enum State {
    Running(AbortHandle),
    Done(Result<ScanTasks, CatalogError>),
    /// Handed over to a poll: no longer held here (a poll plans the id again).
    Taken,
    Cancelled,
}

type Entry = Arc<Mutex<State>>;

/// A replica's background plans, by a digest of their plan id (an id carries its filter, up to
/// 64 KiB; its digest is 32 bytes).
pub struct Submitted {
    plans: moka::sync::Cache<[u8; 32], Entry>,
}

fn digest(id: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(id.as_bytes()).into()
}

fn lock(entry: &Entry) -> std::sync::MutexGuard<'_, State> {
    entry
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Submitted {
    /// Plans are kept at most `ttl` (the shorter of their plan id's lifetime and
    /// [`MAX_KEPT_FOR`]); one still running then stops.
    pub fn new(ttl: Duration) -> Self {
        let ttl = ttl.min(MAX_KEPT_FOR);
        let plans = moka::sync::Cache::builder()
            .max_capacity(MAX_KEPT)
            .time_to_live(ttl)
            .eviction_listener(|_id, entry: Entry, _cause| {
                if let State::Running(job) = &*lock(&entry) {
                    job.abort();
                }
            })
            .build();
        Self { plans }
    }

    /// Keeps the plan `job` computes under `id`, until it is polled, cancelled or expires (a
    /// task on the planning `runtime` waits for it).
    pub fn keep(
        &self,
        id: &str,
        job: tokio::task::JoinHandle<Result<ScanTasks, CatalogError>>,
        runtime: &PlanningRuntime,
    ) {
        // Expired plans are let go now, not at some later read.
        self.plans.run_pending_tasks();
        let entry: Entry = Arc::new(Mutex::new(State::Running(job.abort_handle())));
        self.plans.insert(digest(id), entry.clone());
        runtime.spawn(async move {
            let done = match job.await {
                Ok(done) => done,
                // Cancelled (aborted): the state says so already.
                Err(e) if e.is_cancelled() => return,
                Err(e) => {
                    tracing::error!(error = %e, "a background plan's work stopped");
                    Err(CatalogError::internal("planning stopped"))
                }
            };
            let mut state = lock(&entry);
            if matches!(*state, State::Running(_)) {
                *state = State::Done(done);
            }
        });
    }

    /// Where the plan `id` is, when this replica holds it; a finished one is handed over (and
    /// no longer held).
    pub fn poll(&self, id: &str) -> Option<Progress> {
        let key = digest(id);
        let entry = self.plans.get(&key)?;
        let mut state = lock(&entry);
        Some(match &*state {
            State::Running(_) => Progress::Running,
            State::Cancelled => Progress::Cancelled,
            State::Taken => return None,
            State::Done(_) => {
                let State::Done(done) = std::mem::replace(&mut *state, State::Taken) else {
                    unreachable!("matched above")
                };
                drop(state);
                self.plans.invalidate(&key);
                Progress::Done(done)
            }
        })
    }

    /// Stops the plan `id` if this replica is computing it, and frees what it holds; a later
    /// poll here answers that it was cancelled.
    pub fn cancel(&self, id: &str) {
        if let Some(entry) = self.plans.get(&digest(id)) {
            let mut state = lock(&entry);
            if let State::Running(job) = &*state {
                job.abort();
            }
            *state = State::Cancelled;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks() -> ScanTasks {
        ScanTasks::default()
    }

    #[tokio::test]
    async fn a_plan_is_polled_running_then_handed_over_once() {
        let runtime = PlanningRuntime::new(1, 0).unwrap();
        let kept = Submitted::new(Duration::from_secs(60));
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        kept.keep(
            "p",
            tokio::spawn(async move {
                let _ = wait.await;
                Ok(tasks())
            }),
            &runtime,
        );
        assert!(matches!(kept.poll("p"), Some(Progress::Running)));
        go.send(()).unwrap();
        let mut polled = kept.poll("p");
        for _ in 0..100 {
            if !matches!(polled, Some(Progress::Running)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            polled = kept.poll("p");
        }
        assert!(matches!(polled, Some(Progress::Done(Ok(_)))), "{polled:?}");
        // Handed over: this replica no longer holds it (a poll plans the id again).
        assert!(kept.poll("p").is_none());
        assert!(kept.poll("another").is_none());
    }

    /// Keeps a plan "p" that never finishes; what it returns fails once the plan's work is
    /// dropped.
    fn never_done(
        kept: &Submitted,
        runtime: &PlanningRuntime,
    ) -> tokio::sync::oneshot::Receiver<()> {
        let (dropped, stopped) = tokio::sync::oneshot::channel::<()>();
        kept.keep(
            "p",
            tokio::spawn(async move {
                // Held until the task is dropped: aborting drops it.
                let _dropped = dropped;
                futures::future::pending::<()>().await;
                Ok(tasks())
            }),
            runtime,
        );
        stopped
    }

    #[tokio::test]
    async fn a_cancelled_plan_stops_and_says_so() {
        let runtime = PlanningRuntime::new(1, 0).unwrap();
        let kept = Submitted::new(Duration::from_secs(60));
        let stopped = never_done(&kept, &runtime);
        kept.cancel("p");
        assert!(stopped.await.is_err(), "the plan's work was dropped");
        assert!(matches!(kept.poll("p"), Some(Progress::Cancelled)));
    }

    #[tokio::test]
    async fn an_expired_plan_stops() {
        let runtime = PlanningRuntime::new(1, 0).unwrap();
        let kept = Submitted::new(Duration::from_millis(50));
        let stopped = never_done(&kept, &runtime);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(kept.poll("p").is_none());
        kept.plans.run_pending_tasks();
        assert!(
            stopped.await.is_err(),
            "the expired plan's work was dropped"
        );
    }
}
