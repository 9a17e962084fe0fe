//! Background work in a bounded number of slots, with a bounded number of
//! tasks waiting for one: what a flood of messages can start (hooks,
//! forwards) costs at most that many tasks, sockets and processes.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

/// Slots for background tasks.
#[derive(Debug, Clone)]
pub(crate) struct TaskSlots {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

impl TaskSlots {
    /// At most `running` tasks at once and `max_waiting` waiting for a slot.
    pub(crate) fn new(running: usize, max_waiting: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(running.max(1))),
            waiting: Arc::default(),
            max_waiting,
        }
    }

    /// Spawns `task` to run once a slot is free; `false` (nothing spawned)
    /// when `max_waiting` tasks wait already.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        let (slots, waiting) = (self.slots.clone(), self.waiting.clone());
        tokio::spawn(async move {
            let permit = slots.acquire_owned().await;
            waiting.fetch_sub(1, Ordering::AcqRel);
            let Ok(_permit) = permit else { return };
            task.await;
        });
        true
    }
}
