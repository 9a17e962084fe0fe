//! Showing messages to people: on their terminals (a real pseudo-terminal
//! owned by a real test account) and as desktop notifications (a real X
//! server, session bus and notification server).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags};
use nix::unistd::{Group, User};

use crate::harness::{have, is_root, require, stderr, stdout, Service, TestUsers};
use crate::local::utmp_record;

/// Everything readable from a pty master until `until` appears in it or
/// `limit` has passed.
fn read_master(master: &OwnedFd, until: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(until) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let wait = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if nix::poll::poll(&mut fds, wait).unwrap_or(0) == 0 {
            continue;
        }
        match nix::unistd::read(master.as_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Waits (bounded) until `netsend name` lists `alias`.
fn wait_alias(svc: &Service, alias: &str) {
    let mut listed = String::new();
    for _ in 0..200 {
        listed = stdout(&svc.cli(&["name"]));
        if listed.contains(alias) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("alias {alias} never appeared:\n{listed}");
}

#[test]
fn messages_reach_the_recipients_terminal_sanitised_and_mesg_n_is_honoured() {
    if !require(
        is_root() && have("useradd"),
        "root and useradd (a real account owning a pseudo-terminal)",
    ) {
        return;
    }
    let _accounts = TestUsers::create(&["nsdtty"], None);
    let account = User::from_name("nsdtty").unwrap().unwrap();
    let tty = Group::from_name("tty").unwrap().expect("group tty");
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = nix::unistd::ttyname(pty.slave.as_fd()).unwrap();
    // As login(1) leaves a terminal: the user's, group tty, mesg y.
    nix::unistd::chown(&slave, Some(account.uid), Some(tty.gid)).unwrap();
    let set_mode =
        |mode| std::fs::set_permissions(&slave, std::fs::Permissions::from_mode(mode)).unwrap();
    set_mode(0o620);
    let line = slave.strip_prefix("/dev").unwrap().to_str().unwrap();
    let line = line.trim_start_matches('/');
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let utmp = dir.path().join("utmp");
    std::fs::write(&utmp, utmp_record(std::process::id(), line, "nsdtty", "")).unwrap();
    // The default privilege drop to nobody stays on: the tty group kept as a
    // supplementary group is what lets the service open the terminal.
    let top = format!("user = \"nobody\"\nutmp_path = \"{}\"", utmp.display());
    let svc = Service::start(
        "HOSTTTY",
        &top,
        "[display]\nterminals = true\nterminal_group = \"tty\"\n",
    );
    wait_alias(&svc, "NSDTTY");

    let evil = "hello \x1b]0;pwned\x07\x1b[31mred\x1b[0m \u{9b}2J\u{9d}8;;x\u{9c}line1\nline2\x1bP+q\x1b\\";
    let out = svc.cli(&["send", "--from", "MALLORY", "nsdtty", evil]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = read_master(&pty.master, "EOF", Duration::from_secs(10));
    // The pty's output processing adds a CR before each LF; compare without CRs.
    let text = shown.replace('\r', "");
    assert!(
        text.contains("\x07Message from MALLORY to NSDTTY on HOSTTTY at "),
        "{shown:?}"
    );
    assert!(text.contains("hello red line1\nline2\nEOF\n"), "{shown:?}");
    assert!(
        !shown
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\r' | '\n' | '\x07')),
        "control characters reached the terminal: {shown:?}"
    );
    assert!(!shown.contains("pwned"), "{shown:?}");

    // mesg n: the terminal is no longer group-writable; nothing is written.
    set_mode(0o600);
    let out = svc.cli(&["send", "nsdtty", "not for a closed terminal"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = read_master(&pty.master, "EOF", Duration::from_secs(2));
    assert!(shown.is_empty(), "written despite mesg n: {shown:?}");

    // mesg y again; a message to the computer name reaches every logged-in
    // user's terminals.
    set_mode(0o620);
    let out = svc.cli(&["send", "HOSTTTY", "to everyone here"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = read_master(&pty.master, "EOF", Duration::from_secs(10));
    assert!(
        shown.contains(" to HOSTTTY on HOSTTTY at ") && shown.contains("to everyone here"),
        "{shown:?}"
    );
}
