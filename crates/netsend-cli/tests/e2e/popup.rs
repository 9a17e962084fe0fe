//! `netsend popup` used as a person uses it: in a real terminal (a detached
//! tmux session of fixed size running a shell), typed into with `tmux
//! send-keys` and read back with `tmux capture-pane`, against a real
//! service.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::{have, netsend_bin, require, stderr, stdout, Service};

/// A tmux server of the test's own (its own socket), with one session.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A session `cols` × `rows` running `sh`.
    fn start(dir: &Path, cols: u16, rows: u16) -> Self {
        let tmux = Self {
            socket: dir.join("tmux.sock"),
        };
        let out = tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            "sh",
        ]);
        assert!(out.status.success(), "tmux: {}", stderr(&out));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env("PS1", "$ ")
            .output()
            .unwrap()
    }

    /// Types `keys` (tmux key names, e.g. `Enter`, `Tab`, `Up`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        assert!(self.run(&["send-keys", "-l", text]).status.success());
    }

    /// The screen as text.
    fn screen(&self) -> String {
        stdout(&self.run(&["capture-pane", "-p"]))
    }

    /// The screen with its attributes as escape sequences (`-e`).
    fn screen_with_attributes(&self) -> String {
        stdout(&self.run(&["capture-pane", "-p", "-e"]))
    }

    /// The pane's title, which an OSC 0 or 2 sequence would change.
    fn title(&self) -> String {
        stdout(&self.run(&["display-message", "-p", "#{pane_title}"]))
    }

    /// Waits (bounded) until the screen satisfies `ok`; the last screen.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process running in the pane's shell (the popup), if any.
    fn foreground_child(&self) -> Option<u32> {
        let shell = stdout(&self.run(&["display-message", "-p", "#{pane_pid}"]));
        let shell = shell.trim();
        std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Waits (bounded) until the inbox (as root) has a message that `ok` picks.
fn wait_message(
    svc: &Service,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..300 {
        if let Some(m) = svc.inbox().into_iter().find(&ok) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no message {what} in {:#?}", svc.inbox());
}

#[test]
fn popup_lists_opens_replies_composes_follows_and_restores_the_terminal() {
    if !require(have("tmux"), "tmux (Debian's tmux)") {
        return;
    }
    let svc = Service::start("HOSTPOP", "", "");
    for alias in ["bob", "frontdesk"] {
        let out = svc.cli(&["name", alias, "/add"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let sends: [(&str, &str); 3] = [
        ("ALICE", "Lunch at noon?"),
        ("BOB", "Are you there?"),
        (
            "MALLORY",
            "evil \x1b]0;pwned\x07\x1b[31mred\x1b[0m\u{9b}2J text",
        ),
    ];
    for (from, text) in sends {
        let out = svc.cli(&["send", "--from", from, "HOSTPOP", text]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    svc.wait_inbox(3);
    // Without a terminal it says so, as a NERR/Win32 code.
    let out = svc.cli(&["popup"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ERROR_NOT_SUPPORTED (50)"),
        "{}",
        stderr(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(dir.path(), 120, 30);
    let title = tmux.title();
    let popup = format!(
        "{} --config {} popup; echo popup-exited-$?",
        netsend_bin(),
        svc.config.display()
    );
    tmux.type_text(&popup);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("the list", |s| {
        s.contains("netsend popup: 3 message(s), 3 unread")
    });
    let row = |s: &str, id: &str| {
        s.lines()
            .find(|l| l.trim_start_matches('*').split_whitespace().next() == Some(id))
            .unwrap_or_default()
            .to_owned()
    };
    // Unread marked, sender, alias, time, state, first line; newest last.
    assert!(row(&screen, "1").starts_with("*"), "{screen}");
    assert!(row(&screen, "1").contains("ALICE"), "{screen}");
    assert!(row(&screen, "1").contains("-> HOSTPOP"), "{screen}");
    assert!(row(&screen, "1").contains("Lunch at noon?"), "{screen}");
    assert!(row(&screen, "3").contains("evil red text"), "{screen}");
    // No escape of the peer's reached the terminal: no title change, none
    // of its text, no OSC, and only tmux's own attribute sequences (SGR).
    let raw = tmux.screen_with_attributes();
    assert!(!raw.contains("pwned") && !raw.contains("\x1b]"), "{raw:?}");
    assert!(
        raw.split('\x1b').skip(1).all(|seq| seq.starts_with('[')
            && seq
                .find('m')
                .is_some_and(|end| seq[1..end].chars().all(|c| c.is_ascii_digit() || c == ';'))),
        "{raw:?}"
    );
    assert_eq!(tmux.title(), title);

    // Open the first: its whole text and receipt; read in the inbox.
    tmux.keys(&["Home", "Enter"]);
    tmux.wait("the message", |s| {
        s.contains("From:     ALICE") && s.contains("Receipt:  read")
    });
    let first = wait_message(&svc, "1 read", |m| m["id"] == 1 && m["read"] == true);
    assert!(first["read_at"].is_i64(), "{first}");

    // Back to the list; reply to BOB's message (BOB is an alias here, so
    // the reply comes back to this same service).
    tmux.keys(&["Escape"]);
    tmux.wait("the list again", |s| {
        s.contains("netsend popup: 3 message(s), 2 unread")
    });
    tmux.keys(&["Down", "r"]);
    tmux.wait("the reply form", |s| {
        s.contains("Reply") && s.contains("To:   BOB")
    });
    tmux.type_text("Yes, here");
    tmux.keys(&["Enter"]);
    let reply = wait_message(&svc, "the reply", |m| {
        m["to"] == "BOB" && m["text"] == "Yes, here"
    });
    // It arrives while the window is open and shows up there.
    let id = reply["id"].to_string();
    tmux.wait("the reply in the list", |s| {
        row(s, &id).contains("Yes, here")
    });
    tmux.wait("the reply's report", |s| {
        s.contains("The reply was sent to BOB")
    });

    // A message from outside while the window is open.
    let out = svc.cli(&["send", "--from", "CAROL", "HOSTPOP", "Arrived while open"]);
    assert!(out.status.success(), "{}", stderr(&out));
    tmux.wait("the new arrival", |s| {
        s.contains("Arrived while open") && s.contains("; new message from CAROL to HOSTPOP")
    });

    // A new message, the name completed with Tab from the aliases.
    tmux.keys(&["n"]);
    tmux.type_text("fro");
    tmux.keys(&["Tab"]);
    tmux.wait("the completed name", |s| s.contains("To:   FRONTDESK"));
    tmux.keys(&["Enter"]);
    tmux.type_text("Parcel for you");
    tmux.keys(&["Enter"]);
    // The status line says it went (its arrival here, FRONTDESK being
    // ours, is told on the title line).
    tmux.wait("the send report", |s| {
        s.contains("The message was sent to FRONTDESK")
    });
    let parcel = wait_message(&svc, "to FRONTDESK", |m| {
        m["to"] == "FRONTDESK" && m["text"] == "Parcel for you"
    });
    let id = parcel["id"].to_string();
    tmux.wait("the parcel in the list", |s| {
        row(s, &id).contains("Parcel for you")
    });

    // Delete MALLORY's message, after saying yes.
    tmux.keys(&["Home", "Down", "Down", "d"]);
    tmux.wait("the question", |s| s.contains("Delete message 3? (y/n)"));
    tmux.keys(&["y"]);
    tmux.wait("the deletion", |s| s.contains("Message 3 was deleted."));
    assert!(
        svc.inbox().iter().all(|m| m["id"] != 3),
        "{:#?}",
        svc.inbox()
    );

    // ? shows the help line, and hides it again.
    tmux.keys(&["?"]);
    tmux.wait("the help line", |s| s.contains("Tab completes a name"));
    tmux.keys(&["?"]);
    tmux.wait("no help line", |s| !s.contains("Tab completes a name"));

    // q quits and gives the shell its screen back.
    tmux.keys(&["q"]);
    let screen = tmux.wait("the shell", |s| s.contains("popup-exited-0"));
    assert!(!screen.contains("netsend popup:"), "{screen}");
    assert_eq!(tmux.title(), title);

    // SIGTERM also restores the terminal (cooked mode, echo on).
    tmux.type_text(&popup);
    tmux.keys(&["Enter"]);
    tmux.wait("the list", |s| s.contains("netsend popup: "));
    let pid = tmux.foreground_child().expect("the popup's process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    tmux.wait("the shell after SIGTERM", |s| {
        s.matches("popup-exited-0").count() == 2
    });
    tmux.type_text("stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo | tr '\\n' ,; echo");
    tmux.keys(&["Enter"]);
    tmux.wait("cooked mode", |s| s.contains("icanon,echo,"));
}
