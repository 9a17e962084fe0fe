//! NET LOG's file (`[log] messages`): one JSON line per stored message,
//! control characters written visibly ([`netsend_control::json`]), so the log can be
//! read with `cat` and no sender can move another line's text.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netsend_proto::display::LogSafe;

use super::DeliveryChannel;
use crate::config::Config;
use crate::metrics::DeliveryCounter;
use crate::shutdown::Shutdown;
use crate::store::StoredMessage;

/// The message log channel: appends each message to its file.
pub(crate) struct MessageLog {
    path: PathBuf,
    /// Each write is a task the stop waits for.
    shutdown: Shutdown,
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
            counter: DeliveryCounter::default(),
        }
    }

    /// Counts each line's outcome in `counter`.
    pub(crate) fn counted(self, counter: DeliveryCounter) -> Self {
        Self { counter, ..self }
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
        let shutdown = self.shutdown.clone();
        shutdown.spawn(async move {
            let (path, line) = (self.path.clone(), line(&message));
            let written = tokio::task::spawn_blocking(move || append_line(&path, &line)).await;
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

/// Appends `line` to `path` (created mode 0600), opened for each line so a
/// rotated log is followed.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{line}\n").as_bytes())
}
