//! Stopping the service: one cancellation token that every task watches and
//! one tracker that every task is spawned on, so that a stop waits for each
//! task to finish what it is doing (the shape of mini-redis's shutdown).
//!
//! A connection task that is committing a message when the stop comes
//! finishes the commit and its reply; it only stops reading new frames.

use std::future::Future;

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

/// The service's stop signal and its tasks. Cheap to clone.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    /// A shutdown that has not been asked for.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` on the service's tracker, so that [`Self::finish`] waits
    /// for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Completes when the stop is asked for.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Whether the stop has been asked for.
    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Asks every task to stop.
    pub fn request(&self) {
        self.token.cancel();
    }

    /// Asks every task to stop and waits until each has ended.
    pub async fn finish(&self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn finish_waits_for_a_task_that_completes_its_work_after_the_stop() {
        let shutdown = Shutdown::new();
        let done = Arc::new(AtomicBool::new(false));
        let (task_shutdown, task_done) = (shutdown.clone(), done.clone());
        shutdown.spawn(async move {
            task_shutdown.cancelled().await;
            // Work that must not be cut: it still runs to its end.
            tokio::time::sleep(Duration::from_millis(50)).await;
            task_done.store(true, Ordering::SeqCst);
        });
        shutdown.finish().await;
        assert!(done.load(Ordering::SeqCst));
        assert!(shutdown.is_stopping());
    }
}
