//! Structured logging into a real systemd journal: systemd-journald runs in a
//! private mount namespace (its own /run/systemd and /run/log, so the
//! machine's journal, if any, is untouched), the service logs to it, and
//! journalctl reads the fields back from inside that namespace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{have, is_root, require, stderr, write, Service};

/// Where Debian installs journald (with and without merged /usr).
const JOURNALD: [&str; 2] = [
    "/lib/systemd/systemd-journald",
    "/usr/lib/systemd/systemd-journald",
];

/// Runs its arguments after starting a journald of their own; its first
/// argument is the file for journald's pid. Meant for `unshare --mount`.
const WITH_JOURNALD: &str = r#"#!/bin/sh
set -e
pid_file="$1"; journald="$2"; shift 2
mkdir -p /run/systemd /run/log
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
"$journald" </dev/null >/dev/null 2>&1 &
echo $! > "$pid_file"
i=0
until [ -S /run/systemd/journal/socket ]; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then echo "journald did not start" >&2; exit 1; fi
  sleep 0.05
done
exec "$@"
"#;

/// Stops the test's journald when the test ends.
struct Journald(PathBuf);

impl Drop for Journald {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// The service's journal entries, read inside its mount namespace.
fn entries(svc: &Service) -> Vec<serde_json::Value> {
    let out = Command::new("nsenter")
        .args(["--mount", "--target", &svc.pid().to_string()])
        .args([
            "journalctl",
            "--no-pager",
            "-o",
            "json",
            "SYSLOG_IDENTIFIER=netsend",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn field<'a>(entry: &'a serde_json::Value, name: &str) -> &'a str {
    entry[name].as_str().unwrap_or("")
}

#[test]
fn sends_receptions_and_drops_are_journal_entries_with_their_fields() {
    let journald = JOURNALD.iter().find(|p| Path::new(p).exists());
    let ok = is_root() && have("unshare") && have("nsenter") && have("journalctl");
    let Some(journald) = journald.filter(|_| ok) else {
        require(
            false,
            "root, unshare, nsenter, journalctl and systemd-journald (Debian: systemd, util-linux)",
        );
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let script = scratch.path().join("with-journald.sh");
    let pid_file = scratch.path().join("journald.pid");
    write(&script, WITH_JOURNALD);
    let _journald = Journald(pid_file.clone());
    let svc = Service::start_under(
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            script.to_str().unwrap(),
            pid_file.to_str().unwrap(),
            journald,
        ],
        "HOST15",
        "",
        "[log]\njournald = true\n[filter]\ndeny_senders = [\"SPAM*\"]\n",
    );
    let out = svc.cli(&["send", "HOST15", "Hello", "journal"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = svc.cli(&["send", "--from", "SPAMMER", "HOST15", "buy", "now"]);
    assert!(!out.status.success(), "a denied sender was accepted");
    assert_eq!(svc.inbox().len(), 1);

    // journald writes asynchronously: read until the drop is there (bounded).
    let mut log = Vec::new();
    for _ in 0..100 {
        log = entries(&svc);
        if log.iter().any(|e| field(e, "EVENT") == "drop") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let find = |event: &str| {
        log.iter()
            .find(|e| field(e, "EVENT") == event)
            .unwrap_or_else(|| panic!("no EVENT={event} entry in {log:#?}"))
    };
    let received = find("receive");
    assert_eq!(field(received, "TO"), "HOST15");
    assert_eq!(field(received, "TRANSPORT"), "session");
    assert_eq!(field(received, "MESSAGE"), "message stored");
    assert!(
        field(received, "PEER").starts_with("127.0.0.1:"),
        "{received}"
    );
    assert!(field(received, "ID").parse::<i64>().is_ok(), "{received}");
    let sent = find("send");
    assert_eq!(field(sent, "TO"), "HOST15");
    assert_eq!(field(sent, "MESSAGE"), "message sent");
    let dropped = find("drop");
    assert_eq!(field(dropped, "REASON"), "denied_sender");
    assert_eq!(field(dropped, "FROM"), "SPAMMER");
    assert_eq!(field(dropped, "PRIORITY"), "4", "a drop is a warning");
}
