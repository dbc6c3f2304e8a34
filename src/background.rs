//! The server's background loops, and how they stop.
//!
//! Each loop (the purge queue, signing-key reloads, the summaries of repeated denials, the expiry
//! of idempotency records and old audit events, PostgreSQL's change listener) is started through
//! [`Background::spawn`] with a [`StopSignal`]. A loop waits for its next turn or the signal,
//! whichever comes first, and ends when the signal comes; a turn already under way is finished.
//! When the server stops, [`Background::stop`] gives the signal at once (in-flight requests and
//! loops wind down together) and [`Background::join`] waits for every loop, up to a deadline,
//! before the store closes: no loop touches the store after that. A loop still running at the
//! deadline is aborted at its next await (all of their work can be started again: a purge keeps
//! its lease and is taken up again when the lease runs out).

use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Tells a loop that the server is stopping.
#[derive(Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Resolves once the server is stopping (at once if it already is).
    pub async fn stopped(&mut self) {
        if self.0.wait_for(|stopping| *stopping).await.is_err() {
            // The server's `Background` is gone without a stop (a server dropped, not stopped,
            // as tests do): the signal never comes.
            std::future::pending::<()>().await;
        }
    }

    /// Whether the server is stopping.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// A signal that never comes (for a loop run outside a server, as in tests).
    pub fn never() -> Self {
        Self(watch::channel(false).1)
    }
}

/// The loops this server started, by name.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<(&'static str, JoinHandle<()>)>>,
}

impl Default for Background {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Background::join`] saw.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Joined {
    /// Loops that ended on the signal.
    pub stopped: Vec<&'static str>,
    /// Loops still running at the deadline, aborted.
    pub aborted: Vec<&'static str>,
}

impl Background {
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Starts the loop `run` makes from its stop signal, named `name` in the log.
    pub fn spawn<F>(&self, name: &'static str, run: impl FnOnce(StopSignal) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let task = tokio::spawn(run(StopSignal(self.stop.subscribe())));
        self.tasks
            .lock()
            .expect("background lock")
            .push((name, task));
    }

    /// Signals every loop to stop.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Signals every loop (if not yet) and waits for each until `deadline`; aborts the rest.
    pub async fn join(&self, deadline: Instant) -> Joined {
        self.stop();
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("background lock"));
        let mut joined = Joined::default();
        for (name, mut task) in tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, &mut task).await {
                Ok(_) => joined.stopped.push(name),
                Err(_) => {
                    task.abort();
                    let _ = task.await;
                    tracing::warn!(
                        task = name,
                        "a background task did not stop in time: aborted"
                    );
                    joined.aborted.push(name);
                }
            }
        }
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn loops_end_on_the_signal_and_one_that_does_not_is_aborted_at_the_deadline() {
        let background = Background::new();
        background.spawn("polite", |mut stop| async move {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            loop {
                tokio::select! {
                    () = stop.stopped() => break,
                    _ = tick.tick() => {}
                }
            }
        });
        background.spawn("deaf", |_stop| async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let joined = background
            .join(Instant::now() + Duration::from_millis(200))
            .await;
        assert_eq!(
            joined,
            Joined {
                stopped: vec!["polite"],
                aborted: vec!["deaf"]
            }
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_signal_given_before_a_loop_waits_is_not_missed() {
        let background = Background::new();
        background.stop();
        background.spawn("late", |mut stop| async move { stop.stopped().await });
        let joined = background
            .join(Instant::now() + Duration::from_secs(5))
            .await;
        assert_eq!(joined.stopped, vec!["late"]);
        assert!(!StopSignal::never().is_stopping());
    }
}
