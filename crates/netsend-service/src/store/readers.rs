//! The inbox's readers: a few threads, each with its own SQLite connection,
//! that run every read (listings, searches, look-ups) so that no SQLite call
//! ever runs on the async workers serving TCP 139, UDP 137/138 and the
//! control socket.
//!
//! The work one caller can queue is capped: each ordinary user has at most
//! one read running or waiting for a thread, and ordinary users together
//! hold at most [`USER_READERS`] of the [`READERS`] threads, so root and the
//! service's own reads always find one. Every read is interrupted once it has
//! used [`READ_BUDGET`] of CPU time, and the threads run at the lowest
//! priority ([`READER_NICE`]), so the network path always wins the CPUs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::InboxError;

/// Reader threads (and connections).
pub(crate) const READERS: usize = 3;
/// Of them, the most that ordinary users' reads hold at once.
pub(crate) const USER_READERS: usize = 2;
/// CPU time one read may use; it is then interrupted.
pub(crate) const READ_BUDGET: Duration = Duration::from_secs(2);
/// The readers' nice value: the network path wins whenever both want a CPU.
pub(crate) const READER_NICE: i32 = 19;
/// Reads waiting for a thread before callers are made to wait to queue.
const QUEUE_LEN: usize = 64;
/// SQLite virtual-machine steps between checks of the budget.
const STEPS_PER_CHECK: i32 = 10_000;

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// A pool of reader threads.
pub(crate) struct Readers {
    jobs: mpsc::Sender<Job>,
    /// Places of ordinary users' reads on the threads.
    users: Arc<Semaphore>,
    /// Each ordinary user's one place in line.
    per_user: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Readers {
    /// Opens [`READERS`] connections with `connect` and starts their threads.
    pub(crate) fn start(
        path: &Path,
        connect: fn(&Path) -> Result<Connection, InboxError>,
    ) -> Result<Self, InboxError> {
        let (jobs, rx) = mpsc::channel::<Job>(QUEUE_LEN);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..READERS {
            let conn = connect(path)?;
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("inbox-reader-{i}"))
                .spawn(move || read_loop(conn, &rx))
                .map_err(|e| InboxError::Io(path.to_owned(), e))?;
        }
        Ok(Self {
            jobs,
            users: Arc::new(Semaphore::new(USER_READERS)),
            per_user: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `read` on a reader thread for `user` (`None`: root or the
    /// service itself, not capped) and returns its result.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        user: Option<&str>,
        read: impl FnOnce(&Connection) -> Result<T, InboxError> + Send + 'static,
    ) -> Result<T, InboxError> {
        let mut places = None;
        if let Some(user) = user {
            let own = self
                .per_user
                .lock()
                .expect("reader places lock")
                .entry(user.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(1)))
                .clone();
            let turn = own.acquire_owned().await.map_err(|_| InboxError::Closed)?;
            let shared = self
                .users
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| InboxError::Closed)?;
            places = Some((user, turn, shared));
        }
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(read(conn));
        });
        let sent = self.jobs.send(job).await;
        let result = match sent {
            Ok(()) => rx.await.unwrap_or(Err(InboxError::Closed)),
            Err(_) => Err(InboxError::Closed),
        };
        let result = result.map_err(|e| match e {
            InboxError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                InboxError::TooSlow
            }
            e => e,
        });
        if let Some((user, turn, shared)) = places {
            drop((turn, shared));
            let mut table = self.per_user.lock().expect("reader places lock");
            if table.get(user).is_some_and(|s| Arc::strong_count(s) == 1) {
                table.remove(user);
            }
        }
        result
    }
}

/// One reader thread: takes jobs until the pool is dropped.
fn read_loop(mut conn: Connection, jobs: &Mutex<mpsc::Receiver<Job>>) {
    // Linux nice values are per thread; failing to lower ours is harmless.
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), READER_NICE);
    // The budget is this thread's CPU time, so a read starved of the CPUs
    // by the network path is not stopped for it.
    let cpu_ms = || {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0, |t| {
            let ms = Duration::from(t).as_millis();
            u64::try_from(ms).unwrap_or(u64::MAX)
        })
    };
    let deadline = Arc::new(AtomicU64::new(u64::MAX));
    let watched = deadline.clone();
    if conn
        .progress_handler(
            STEPS_PER_CHECK,
            Some(move || cpu_ms() > watched.load(Ordering::Relaxed)),
        )
        .is_err()
    {
        tracing::warn!("inbox reader: cannot bound the time of reads");
    }
    loop {
        let job = jobs.lock().expect("reader jobs lock").blocking_recv();
        let Some(job) = job else { return };
        let budget = u64::try_from(READ_BUDGET.as_millis()).unwrap_or(u64::MAX);
        deadline.store(cpu_ms().saturating_add(budget), Ordering::Relaxed);
        job(&conn);
        deadline.store(u64::MAX, Ordering::Relaxed);
    }
}
