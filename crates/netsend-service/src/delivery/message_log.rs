//! NET LOG's file (`[log] messages`): one JSON line per stored message,
//! control characters written visibly ([`netsend_control::json`]), so the log can be
//! read with `cat` and no sender can move another line's text.

use std::collections::VecDeque;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use netsend_proto::display::LogSafe;

use super::DeliveryChannel;
use crate::config::Config;
use crate::metrics::DeliveryCounter;
use crate::shutdown::Shutdown;
use crate::store::StoredMessage;

/// The message log channel: appends each message to its file, in the order
/// the messages were handed to it.
pub(crate) struct MessageLog {
    path: PathBuf,
    /// Each write is a task the stop waits for.
    shutdown: Shutdown,
    /// Lines not written yet, oldest first. `deliver` queues a line at once,
    /// so the order is the delivery order whichever write task runs first.
    pending: Arc<Mutex<VecDeque<String>>>,
    /// Held while lines are taken from `pending` and written, so two tasks
    /// never interleave their batches.
    writing: Arc<Mutex<()>>,
    /// Where lines written and failed are counted.
    counter: DeliveryCounter,
}

impl MessageLog {
    /// The log at `[log] messages_path`, by default `messages.log` in the
    /// state directory.
    pub(crate) fn from_config(config: &Config, shutdown: Shutdown) -> Self {
        let path = config.log.messages_path.clone();
        let path = path.unwrap_or_else(|| config.state_dir.join("messages.log"));
        Self::at(path, shutdown)
    }

    /// The log at `path`.
    pub(crate) fn at(path: PathBuf, shutdown: Shutdown) -> Self {
        Self {
            path,
            shutdown,
            pending: Arc::default(),
            writing: Arc::default(),
            counter: DeliveryCounter::default(),
        }
    }

    /// Counts each line's outcome in `counter`.
    pub(crate) fn counted(self, counter: DeliveryCounter) -> Self {
        Self { counter, ..self }
    }

    /// Writes every queued line (none when an earlier task took them).
    fn write_pending(&self) -> std::io::Result<usize> {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<String> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        if !lines.is_empty() {
            append_lines(&self.path, &lines)?;
        }
        Ok(lines.len())
    }
}

impl DeliveryChannel for MessageLog {
    fn name(&self) -> &'static str {
        "message log"
    }

    fn wants(&self, _: &StoredMessage) -> bool {
        true
    }

    fn deliver(self: Arc<Self>, message: Arc<StoredMessage>) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(line(&message));
        let shutdown = self.shutdown.clone();
        shutdown.spawn(async move {
            let log = Arc::clone(&self);
            let written = tokio::task::spawn_blocking(move || log.write_pending()).await;
            if let Ok(Err(e)) = &written {
                tracing::warn!(id = message.id, error = %LogSafe(&e), "cannot write the message log");
            }
            let outcome = if matches!(written, Ok(Ok(_))) { "written" } else { "failed" };
            self.counter.record("message_log", outcome);
        });
    }
}

/// One line of the message log: a JSON object with the time (UTC, RFC 3339),
/// id, sender, alias, recipient user, source, transport, broadcast flag and
/// text.
fn line(m: &StoredMessage) -> String {
    let time = chrono::DateTime::from_timestamp_millis(m.received_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let line = serde_json::json!({
        "time": time,
        "id": m.id,
        "from": m.from,
        "to": m.to,
        "user": m.recipient_user,
        "source": m.source,
        "transport": m.transport,
        "broadcast": m.broadcast,
        "text": m.text,
    });
    netsend_control::json::to_line(&line).unwrap_or_default()
}

/// Appends `lines` to `path` (created mode 0600) in one write, opened for
/// each batch so a rotated log is followed.
fn append_lines(path: &Path, lines: &[String]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let mut batch = String::new();
    for line in lines {
        batch.push_str(line);
        batch.push('\n');
    }
    file.write_all(batch.as_bytes())
}
