//! The service with real systemd daemons: systemd-journald for its journal
//! fields and systemd-logind (on a system bus of its own) for login sessions.
//! They run in a private mount namespace, with their own /run/systemd,
//! /run/log and /run/dbus, so the machine's own daemons, if any, are
//! untouched; the service runs in that namespace too, and journalctl reads
//! the journal back from inside it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{have, is_root, require, stderr, stdout, write, Service, TestUsers};

/// Where Debian installs systemd's daemons (with and without merged /usr).
const SYSTEMD_DIRS: [&str; 2] = ["/lib/systemd", "/usr/lib/systemd"];

/// `with-systemd.sh PIDS SEED DAEMON... -- COMMAND...`: starts each DAEMON
/// (`journald`, or `logind` with a system bus, seeded with the session and
/// user records under SEED, whose leader becomes COMMAND), writing their
/// pids to PIDS, then runs COMMAND. Meant for `unshare --mount`.
const WITH_SYSTEMD: &str = r#"#!/bin/sh
set -e
pids="$1"; seed="$2"; shift 2
for dir in /lib/systemd /usr/lib/systemd; do
  if [ -x "$dir/systemd-journald" ]; then bin="$dir"; break; fi
done
wait_for() {
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then echo "gave up waiting for: $*" >&2; exit 1; fi
    sleep 0.05
  done
}
mkdir -p /run/systemd /run/log /run/dbus
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
mount -t tmpfs tmpfs /run/dbus
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
: > "$pids"
while [ "$1" != "--" ]; do
  case "$1" in
    journald)
      "$bin/systemd-journald" </dev/null >/dev/null 2>&1 &
      echo $! >> "$pids"
      wait_for test -S /run/systemd/journal/socket
      ;;
    logind)
      cp -R "$seed/." /run/systemd/
      # The sessions' leader is this process, which becomes COMMAND.
      sed -i "s/^LEADER=.*/LEADER=$$/" /run/systemd/sessions/*
      dbus-daemon --system --fork --print-pid >> "$pids"
      "$bin/systemd-logind" </dev/null >/dev/null 2>&1 &
      echo $! >> "$pids"
      wait_for busctl --system call org.freedesktop.login1 /org/freedesktop/login1         org.freedesktop.login1.Manager ListSessions
      ;;
  esac
  shift
done
shift
exec "$@"
"#;

/// Stops the test's daemons when the test ends.
pub(crate) struct Daemons(PathBuf);

impl Drop for Daemons {
    fn drop(&mut self) {
        let pids = std::fs::read_to_string(&self.0).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
}

/// Whether this machine can run the daemons; skips (or, in CI, fails) if not.
pub(crate) fn can_run(daemons: &[&str]) -> bool {
    let installed = daemons.iter().all(|d| {
        let binary = format!("systemd-{d}");
        SYSTEMD_DIRS
            .iter()
            .any(|dir| Path::new(dir).join(&binary).exists())
    });
    let tools = ["unshare", "nsenter", "journalctl", "busctl", "dbus-daemon"];
    require(
        is_root() && installed && tools.iter().all(|t| have(t)),
        "root, systemd-journald, systemd-logind, journalctl, busctl, dbus-daemon, \
         unshare and nsenter (Debian: systemd, dbus-daemon, util-linux)",
    )
}

/// Starts a service under `daemons` (seeded from `seed`); the returned guard
/// stops them.
pub(crate) fn start_with(
    daemons: &[&str],
    seed: &Path,
    computer: &str,
    extra_top: &str,
    extra: &str,
) -> (Daemons, Service) {
    let scratch = seed.parent().unwrap();
    let script = scratch.join("with-systemd.sh");
    let pids = scratch.join("daemons.pid");
    write(&script, WITH_SYSTEMD);
    let guard = Daemons(pids.clone());
    let mut wrapper = vec![
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        script.to_str().unwrap(),
        pids.to_str().unwrap(),
        seed.to_str().unwrap(),
    ];
    wrapper.extend_from_slice(daemons);
    wrapper.push("--");
    let svc = Service::start_under(&wrapper, computer, extra_top, extra);
    (guard, svc)
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

/// A service logging to a journald of its own (`[log] journald`, senders
/// `SPAM*` denied), or `None` when the test cannot run here.
pub(crate) fn start_journald(computer: &str) -> Option<(tempfile::TempDir, Daemons, Service)> {
    if !can_run(&["journald"]) {
        return None;
    }
    let scratch = tempfile::tempdir().unwrap();
    let seed = scratch.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    let (daemons, svc) = start_with(
        &["journald"],
        &seed,
        computer,
        "",
        "[log]\njournald = true\n[filter]\ndeny_senders = [\"SPAM*\"]\n",
    );
    Some((scratch, daemons, svc))
}

/// The journal entries once one of each of `events` is there (journald
/// writes asynchronously; bounded).
pub(crate) fn wait_events(svc: &Service, events: &[&str]) -> Vec<serde_json::Value> {
    let mut log = Vec::new();
    for _ in 0..100 {
        log = entries(svc);
        if events
            .iter()
            .all(|ev| log.iter().any(|e| field(e, "EVENT") == *ev))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    log
}

/// The first entry with `EVENT=event`.
pub(crate) fn find_event<'a>(log: &'a [serde_json::Value], event: &str) -> &'a serde_json::Value {
    log.iter()
        .find(|e| field(e, "EVENT") == event)
        .unwrap_or_else(|| panic!("no EVENT={event} entry in {log:#?}"))
}

pub(crate) fn field<'a>(entry: &'a serde_json::Value, name: &str) -> &'a str {
    entry[name].as_str().unwrap_or("")
}

#[test]
fn sends_receptions_and_drops_are_journal_entries_with_their_fields() {
    let Some((_scratch, _daemons, svc)) = start_journald("HOSTJOURNAL") else {
        return;
    };
    let out = svc.cli(&["send", "HOSTJOURNAL", "Hello", "journal"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = svc.cli(&["send", "--from", "SPAMMER", "HOSTJOURNAL", "buy", "now"]);
    assert!(!out.status.success(), "a denied sender was accepted");
    assert_eq!(svc.inbox().len(), 1);

    let log = wait_events(&svc, &["drop"]);
    let find = |event: &str| find_event(&log, event);
    let received = find("receive");
    assert_eq!(field(received, "TO"), "HOSTJOURNAL");
    assert_eq!(field(received, "TRANSPORT"), "session");
    assert_eq!(field(received, "MESSAGE"), "message stored");
    assert!(
        field(received, "PEER").starts_with("127.0.0.1:"),
        "{received}"
    );
    assert!(field(received, "ID").parse::<i64>().is_ok(), "{received}");
    let sent = find("send");
    assert_eq!(field(sent, "TO"), "HOSTJOURNAL");
    assert_eq!(field(sent, "MESSAGE"), "message sent");
    let dropped = find("drop");
    assert_eq!(field(dropped, "REASON"), "denied_sender");
    assert_eq!(field(dropped, "FROM"), "SPAMMER");
    assert_eq!(field(dropped, "PRIORITY"), "4", "a drop is a warning");
}

/// logind's record of a session (the file it restores sessions from when it
/// starts); the leader is filled in by the wrapper script.
fn session_record(uid: u32, user: &str, class: &str, remote_host: Option<&str>) -> String {
    let remote = remote_host.map_or_else(
        || "REMOTE=0\nTTY=pts/9\nTYPE=tty\n".to_owned(),
        |host| format!("REMOTE=1\nREMOTE_HOST={host}\nTYPE=tty\nSERVICE=sshd\n"),
    );
    format!(
        "UID={uid}\nUSER={user}\nACTIVE=1\nSTATE=active\nCLASS={class}\n{remote}\
         SCOPE=session-{user}.scope\nLEADER=0\nREALTIME=1795555000000000\nMONOTONIC=1000\n"
    )
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn logind_sessions_give_aliases_and_users_recipients() {
    if !can_run(&["logind"]) {
        return;
    }
    let people = ["nsldesk", "nslfar", "nslbg"];
    let _users = TestUsers::create(&people, None);
    let scratch = tempfile::tempdir().unwrap();
    let seed = scratch.path().join("seed");
    // A person at this machine, one logged in from elsewhere, and a
    // background session (not a person): as logind would list them.
    let sessions = [
        ("c1", "nsldesk", "user", None),
        ("c2", "nslfar", "user", Some("127.0.0.3")),
        ("c3", "nslbg", "background", None),
    ];
    for (id, user, class, host) in sessions {
        let uid = uid_of(user);
        write(
            &seed.join("sessions").join(id),
            &session_record(uid, user, class, host),
        );
        write(
            &seed.join("users").join(uid.to_string()),
            &format!(
                "NAME={user}\nSTATE=active\nSESSIONS={id}\nREALTIME=1795555000000000\nMONOTONIC=1000\n"
            ),
        );
    }
    // utmp names someone else: the sessions must come from logind.
    let utmp = scratch.path().join("utmp");
    std::fs::write(&utmp, b"").unwrap();
    let (_daemons, svc) = start_with(
        &["logind"],
        &seed,
        "HOSTLOGIND",
        &format!("sessions = \"logind\"\nutmp_path = \"{}\"", utmp.display()),
        "",
    );
    // logind itself lists all three, so what the service leaves out, it
    // leaves out by their class and place.
    let listed = Command::new("nsenter")
        .args(["--mount", "--target", &svc.pid().to_string()])
        .args(["busctl", "--system", "call", "org.freedesktop.login1"])
        .args(["/org/freedesktop/login1", "org.freedesktop.login1.Manager"])
        .arg("ListSessions")
        .output()
        .unwrap();
    let listed = stdout(&listed);
    for user in people {
        assert!(listed.contains(&format!("\"{user}\"")), "{listed}");
    }
    // The local person gets a messaging name; the remote one and the
    // background session do not.
    let mut names = String::new();
    for _ in 0..100 {
        names = stdout(&svc.cli(&["name"]));
        if names.contains("NSLDESK") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(names.contains("NSLDESK"), "{names}");
    assert!(
        !names.contains("NSLFAR") && !names.contains("NSLBG"),
        "{names}"
    );
    // /USERS: one copy to the local person, an attempt at the remote one's
    // machine (nobody listens there), nothing for the background session.
    let out = svc.cli(&["send", "/USERS", "Back up in 10 minutes"]);
    let (so, se) = (stdout(&out), stderr(&out));
    assert!(so.contains("sent to nsldesk"), "{so}{se}");
    assert!(se.contains("nslfar"), "{so}{se}");
    assert!(!so.contains("nslbg") && !se.contains("nslbg"), "{so}{se}");
    let out = svc.cli_as("nsldesk", &["inbox", "--json"]);
    let seen: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["text"], "Back up in 10 minutes");
}
