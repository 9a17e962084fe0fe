//! The journal watch: `journalctl --follow --output=json` as a supervised
//! child (restarted with backoff, resuming after the last entry's cursor),
//! filtered by journalctl itself (`--priority`, `--unit`, `FIELD=value`);
//! each entry it prints raises an ERRORLOG alert.
//!
//! journalctl rather than libsystemd's sd-journal: its JSON export is
//! systemd's stable interface, it needs no C library linked into the daemon
//! nor a blocking reader thread, and a fault while reading the journal stays
//! in the child.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netsend_proto::display::LogSafe;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::Alerter;
use crate::config::{JournalWatchConfig, PRIORITIES};
use crate::shutdown::Shutdown;
use netsend_control::types::{AlertClass, AlertRequest};

/// The service name journal alerts carry.
const SERVICE: &str = "journal";
/// Longest line of journalctl's output read; a longer entry is skipped.
const MAX_LINE: usize = 64 * 1024;
/// Most characters of an entry's message in an alert.
const MAX_MESSAGE_CHARS: usize = 1024;
/// The first pause before journalctl is started again, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const LONGEST_BACKOFF: Duration = Duration::from_secs(60);

/// One journal entry's fields the alert uses (JSON export format: a field
/// is a string, or an array of bytes when it is not text).
#[derive(Debug, serde::Deserialize)]
struct Entry {
    #[serde(rename = "__CURSOR")]
    cursor: Option<String>,
    #[serde(rename = "MESSAGE")]
    message: Option<serde_json::Value>,
    #[serde(rename = "PRIORITY")]
    priority: Option<String>,
    #[serde(rename = "SYSLOG_IDENTIFIER")]
    identifier: Option<String>,
    #[serde(rename = "_COMM")]
    command: Option<String>,
    #[serde(rename = "_SYSTEMD_UNIT")]
    unit: Option<String>,
}

impl Entry {
    /// The alert text: "crit raid: md0 degraded", and the unit when known.
    fn text(&self) -> String {
        let message = match &self.message {
            Some(serde_json::Value::String(s)) => s.chars().take(MAX_MESSAGE_CHARS).collect(),
            Some(serde_json::Value::Array(bytes)) => {
                let bytes: Vec<u8> = bytes
                    .iter()
                    .take(MAX_MESSAGE_CHARS)
                    .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => "(no message)".to_owned(),
        };
        let priority = self
            .priority
            .as_deref()
            .and_then(|p| p.parse::<usize>().ok())
            .and_then(|p| PRIORITIES.get(p))
            .copied()
            .unwrap_or("log");
        let who = self
            .identifier
            .as_deref()
            .or(self.command.as_deref())
            .unwrap_or("?");
        let mut text = format!("{priority} {who}: {message}");
        if let Some(unit) = &self.unit {
            text.push_str(&format!("\n(unit {unit})"));
        }
        text
    }
}

/// journalctl's arguments: follow from `start` (Unix seconds) or after
/// `cursor`, JSON, with the watch's filters.
fn arguments(config: &JournalWatchConfig, start: u64, cursor: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = [
        "--follow",
        "--output=json",
        "--no-pager",
        "--quiet",
        "--no-tail",
    ]
    .map(String::from)
    .to_vec();
    match cursor {
        Some(c) => args.push(format!("--after-cursor={c}")),
        None => args.push(format!("--since=@{start}")),
    }
    args.push(format!("--priority={}", config.level().unwrap_or(2)));
    args.extend(config.units.iter().map(|u| format!("--unit={u}")));
    args.extend(config.matches.iter().cloned());
    args
}

/// Runs journalctl until the service stops, starting it again (after a
/// pause that doubles while it keeps failing) whenever it ends.
pub(crate) async fn watch(alerter: Arc<Alerter>, config: JournalWatchConfig, shutdown: Shutdown) {
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut cursor: Option<String> = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let began = Instant::now();
        let args = arguments(&config, start, cursor.as_deref());
        match follow(&alerter, &args, &mut cursor, &shutdown).await {
            Ok(()) if shutdown.is_stopping() => return,
            Ok(()) => tracing::warn!("journalctl ended; the journal watch starts it again"),
            Err(e) => tracing::warn!(error = %LogSafe(&e), "journal watch: cannot run journalctl"),
        }
        if began.elapsed() > LONGEST_BACKOFF {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(LONGEST_BACKOFF);
    }
}

/// One run of journalctl: each entry raises an alert and moves `cursor`.
async fn follow(
    alerter: &Alerter,
    args: &[String],
    cursor: &mut Option<String>,
    shutdown: &Shutdown,
) -> std::io::Result<()> {
    let mut child = tokio::process::Command::new("journalctl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
    let mut lines = BufReader::new(stdout);
    let mut line = Vec::new();
    tracing::info!(event = "journal_watch", "following the journal");
    loop {
        line.clear();
        let read = tokio::select! {
            () = shutdown.cancelled() => break,
            read = read_bounded(&mut lines, &mut line) => read?,
        };
        match read {
            None => break,
            Some(false) => tracing::warn!("journal watch: an entry longer than 64 KiB was skipped"),
            Some(true) => match serde_json::from_slice::<Entry>(&line) {
                Ok(entry) => {
                    if entry.cursor.is_some() {
                        cursor.clone_from(&entry.cursor);
                    }
                    alerter.submit(AlertRequest {
                        class: AlertClass::Errorlog,
                        service: SERVICE.into(),
                        text: entry.text(),
                        program: None,
                    });
                }
                Err(e) => tracing::warn!(error = %e, "journal watch: unreadable entry"),
            },
        }
    }
    let _ = child.kill().await;
    Ok(())
}

/// Reads one line into `line` (without its newline): `Some(true)`, or
/// `Some(false)` when it was longer than [`MAX_LINE`] (the rest of it is
/// read and dropped); `None` at the end.
async fn read_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let mut fits = true;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok((!line.is_empty() || !fits).then_some(fits));
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if fits && line.len() + chunk.len() <= MAX_LINE {
            line.extend_from_slice(chunk);
        } else {
            fits = false;
            line.clear();
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(fits));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journalctl_is_asked_for_the_watch_s_entries_only() {
        let config = JournalWatchConfig {
            priority: "err".into(),
            units: vec!["cron.service".into()],
            matches: vec!["_UID=0".into()],
        };
        let args = arguments(&config, 1_700_000_000, None);
        assert!(args.contains(&"--since=@1700000000".to_owned()));
        assert!(args.contains(&"--priority=3".to_owned()));
        assert!(args.contains(&"--unit=cron.service".to_owned()));
        assert_eq!(args.last().map(String::as_str), Some("_UID=0"));
        let again = arguments(&config, 1_700_000_000, Some("s=abc"));
        assert!(again.contains(&"--after-cursor=s=abc".to_owned()));
        assert!(!again.iter().any(|a| a.starts_with("--since")));
    }

    #[test]
    fn an_entry_becomes_a_text_without_its_pid() {
        let entry: Entry = serde_json::from_str(
            r#"{"__CURSOR":"c","MESSAGE":"md0 degraded","PRIORITY":"2","SYSLOG_IDENTIFIER":"raid","_PID":"42","_SYSTEMD_UNIT":"mdmonitor.service"}"#,
        )
        .unwrap();
        assert_eq!(
            entry.text(),
            "crit raid: md0 degraded\n(unit mdmonitor.service)"
        );
        let binary: Entry =
            serde_json::from_str(r#"{"MESSAGE":[104,105,255],"PRIORITY":"9","_COMM":"x"}"#)
                .unwrap();
        assert_eq!(binary.text(), "log x: hi\u{fffd}");
    }

    proptest::proptest! {
        /// Whatever a local user logs, or journalctl prints, each line is
        /// read within its bound and an entry's text within its own.
        #[test]
        fn any_output_is_read_within_bounds_and_any_entry_has_a_text(
            output in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
            message in "\\PC{0,3000}",
            priority in "\\PC{0,4}",
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let mut reader = BufReader::with_capacity(64, &output[..]);
                let mut line = Vec::new();
                for _ in 0..=output.len() {
                    line.clear();
                    match read_bounded(&mut reader, &mut line).await.unwrap() {
                        None => break,
                        Some(_) => assert!(line.len() <= MAX_LINE && !line.contains(&b'\n')),
                    }
                }
                let _ = serde_json::from_slice::<Entry>(&output);
            });
            let json = serde_json::json!({"MESSAGE": message, "PRIORITY": priority});
            let entry: Entry = serde_json::from_value(json).unwrap();
            proptest::prop_assert!(entry.text().chars().count() <= MAX_MESSAGE_CHARS + 32);
        }
    }

    #[tokio::test]
    async fn lines_are_read_within_their_bound() {
        let long = vec![b'x'; MAX_LINE + 10];
        let mut input = b"{\"a\":1}\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\nlast");
        let mut reader = BufReader::with_capacity(1024, &input[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_bounded(&mut reader, &mut line).await.unwrap(),
            Some(true)
        );
        assert_eq!(line, b"{\"a\":1}");
        line.clear();
        assert_eq!(
            read_bounded(&mut reader, &mut line).await.unwrap(),
            Some(false)
        );
        line.clear();
        assert_eq!(
            read_bounded(&mut reader, &mut line).await.unwrap(),
            Some(true)
        );
        assert_eq!(line, b"last");
        line.clear();
        assert_eq!(read_bounded(&mut reader, &mut line).await.unwrap(), None);
    }
}
