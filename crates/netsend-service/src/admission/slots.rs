//! Bounded slots: background work in a bounded number of slots, with a
//! bounded number of tasks waiting for one, so what a flood of messages can
//! start (hooks, forwards) costs at most that many tasks, sockets and
//! processes; and connections counted per key (an address, a user) under a
//! cap, each place given back when its holder is dropped.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use netsend_proto::policy::OpenCounts;
use tokio::sync::Semaphore;

use crate::shutdown::Shutdown;

/// Connections open per key, at most a cap each ([`OpenCounts`] shared by
/// the driver and every [`CountedSlot`] it hands out).
#[derive(Debug, Clone)]
pub(crate) struct OpenTable<K>(Arc<Mutex<OpenCounts<K>>>);

impl<K: Eq + Hash + Clone> OpenTable<K> {
    /// Nothing open; each key may hold `cap` (at least 1).
    pub(crate) fn new(cap: usize) -> Self {
        Self(Arc::new(Mutex::new(OpenCounts::new(cap))))
    }

    /// Changes each key's cap (a configuration reload).
    pub(crate) fn set_cap(&self, cap: usize) {
        self.0.lock().expect("open table lock").set_cap(cap);
    }

    /// A place for one more connection of `key`, or `None` when it holds
    /// its cap already.
    pub(crate) fn take(&self, key: K) -> Option<CountedSlot<K>> {
        let opened = self.0.lock().expect("open table lock").try_open(&key);
        opened.then(|| CountedSlot {
            table: self.0.clone(),
            key,
        })
    }
}

/// One connection's place in an [`OpenTable`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct CountedSlot<K: Eq + Hash + Clone> {
    table: Arc<Mutex<OpenCounts<K>>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Drop for CountedSlot<K> {
    fn drop(&mut self) {
        self.table.lock().expect("open table lock").close(&self.key);
    }
}

/// Slots for background tasks, on the service's [`Shutdown`] tracker: a
/// stop waits for the tasks running in a slot and starts none of those
/// still waiting for one.
#[derive(Clone)]
pub(crate) struct TaskSlots {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    shutdown: Shutdown,
}

impl TaskSlots {
    /// At most `running` tasks at once and `max_waiting` waiting for a slot,
    /// spawned on `shutdown`'s tracker.
    pub(crate) fn new(running: usize, max_waiting: usize, shutdown: Shutdown) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(running.max(1))),
            waiting: Arc::default(),
            max_waiting,
            shutdown,
        }
    }

    /// Spawns `task` to run once a slot is free (unless the service stops
    /// first); `false` (nothing spawned) when `max_waiting` tasks wait
    /// already.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        let (slots, waiting) = (self.slots.clone(), self.waiting.clone());
        let shutdown = self.shutdown.clone();
        self.shutdown.spawn(async move {
            let permit = tokio::select! {
                // Checked first: after a stop, a freed slot starts nothing.
                biased;
                () = shutdown.cancelled() => None,
                permit = slots.acquire_owned() => permit.ok(),
            };
            waiting.fetch_sub(1, Ordering::AcqRel);
            let Some(_permit) = permit else { return };
            task.await;
        });
        true
    }
}
