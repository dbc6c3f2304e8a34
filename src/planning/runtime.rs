//! Where plans are computed: a runtime of its own whose threads run at a low priority (`nice`),
//! so that planning uses what CPU the requests leave and never delays load-table. A plan's
//! whole work runs here: reading manifests, parsing them, pruning and rendering.
//!
//! Owns: the planning threads and their priority. Must not touch: what a plan computes.

use std::future::Future;

/// The planning runtime. Dropping it lets its threads go without waiting for them (it may be
/// dropped inside another runtime, where waiting is not allowed).
pub struct PlanningRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

/// Lowers the calling thread's priority to `nice` (Linux sets it per thread). Raising `nice`
/// needs no privilege; a failure leaves the thread as it was.
fn lower_priority(nice: i32) {
    // SAFETY: setpriority reads only its arguments; `who` 0 is the calling thread on Linux.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0;
    if failed {
        tracing::warn!(
            nice,
            "a planning thread kept its priority: setpriority failed"
        );
    }
}

impl PlanningRuntime {
    /// `threads` worker threads (and blocking threads as needed), each at `nice`.
    pub fn new(threads: usize, nice: i32) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(threads.max(1) * 2)
            .thread_name("floe-planning")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `work` on the planning threads.
    pub fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime
            .as_ref()
            .expect("the planning runtime lives as long as the planner")
            .spawn(work)
    }
}

impl Drop for PlanningRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planning_threads_run_at_the_asked_priority() {
        let runtime = PlanningRuntime::new(1, 7).unwrap();
        let nice = futures::executor::block_on(runtime.spawn(async {
            // SAFETY: getpriority reads only its arguments.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
        }))
        .unwrap();
        assert_eq!(nice, 7);
        // A blocking thread of the runtime too.
        let nice = futures::executor::block_on(runtime.spawn(async {
            tokio::task::spawn_blocking(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) })
                .await
                .unwrap()
        }))
        .unwrap();
        assert_eq!(nice, 7);
    }

    #[tokio::test]
    async fn dropping_it_inside_another_runtime_does_not_panic() {
        let runtime = PlanningRuntime::new(1, 0).unwrap();
        assert_eq!(runtime.spawn(async { 1 }).await.unwrap(), 1);
        drop(runtime);
    }
}
