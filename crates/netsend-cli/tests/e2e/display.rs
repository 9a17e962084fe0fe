//! Showing messages to people: on their terminals (a real pseudo-terminal
//! owned by a real test account) and as desktop notifications (a real X
//! server, session bus and notification server).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
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

/// A pseudo-terminal as login(1) leaves it for `user`: theirs, group tty,
/// `mesg y` (0620). Returns the pty and its utmp line (`pts/N`).
fn user_pty(user: &str) -> (nix::pty::OpenptyResult, String) {
    let account = User::from_name(user).unwrap().unwrap();
    let tty = Group::from_name("tty").unwrap().expect("group tty");
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = nix::unistd::ttyname(pty.slave.as_fd()).unwrap();
    nix::unistd::chown(&slave, Some(account.uid), Some(tty.gid)).unwrap();
    std::fs::set_permissions(&slave, std::fs::Permissions::from_mode(0o620)).unwrap();
    let line = slave
        .strip_prefix("/dev/")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    (pty, line)
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
        is_root() && have("useradd") && have("runuser"),
        "root, useradd and runuser (a real account owning a pseudo-terminal)",
    ) {
        return;
    }
    let _accounts = TestUsers::create(&["nsdtty"], None);
    let (pty, line) = user_pty("nsdtty");
    let slave = format!("/dev/{line}");
    let set_mode =
        |mode| std::fs::set_permissions(&slave, std::fs::Permissions::from_mode(mode)).unwrap();
    let line = line.as_str();
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
    // It was shown to nsdtty, on their terminal, and to no one else: each
    // user's view of a shared message carries their own receipt.
    let shared_as = |user: &str| {
        let out = svc.cli_as(user, &["inbox", "--json"]);
        let seen: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        seen.into_iter()
            .find(|m| m["to"] == "HOSTTTY")
            .unwrap_or_else(|| panic!("{user} does not see the shared message"))
    };
    let mut theirs = serde_json::Value::Null;
    for _ in 0..50 {
        theirs = shared_as("nsdtty");
        if theirs["shown_at"].is_i64() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(theirs["shown_at"].is_i64(), "{theirs}");
    let others = shared_as("nobody");
    assert!(others["shown_at"].is_null(), "{others}");
}

#[test]
fn a_message_kept_while_away_is_shown_at_the_next_login() {
    if !require(
        is_root() && have("useradd") && have("runuser"),
        "root, useradd and runuser (a real account owning a pseudo-terminal)",
    ) {
        return;
    }
    let _accounts = TestUsers::create(&["nsdaway"], None);
    let (pty, line) = user_pty("nsdaway");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Nobody is logged in yet.
    let utmp = dir.path().join("utmp");
    std::fs::write(&utmp, b"").unwrap();
    let top = format!("user = \"nobody\"\nutmp_path = \"{}\"", utmp.display());
    let svc = Service::start(
        "HOSTAWAY",
        &top,
        "[display]\nterminals = true\nterminal_group = \"tty\"\npending_hours = 1\n",
    );
    // The user's own alias outlives their session.
    let out = svc.cli_as("nsdaway", &["name", "backoffice", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = svc.cli(&[
        "send",
        "--from",
        "BOSS",
        "backoffice",
        "see me when you are back",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = svc.wait_inbox(1);
    assert!(stored[0]["shown_at"].is_null(), "{stored:?}");
    // They log in: the waiting message comes up on their terminal.
    std::fs::write(&utmp, utmp_record(std::process::id(), &line, "nsdaway", "")).unwrap();
    let shown = read_master(&pty.master, "EOF", Duration::from_secs(15));
    assert!(
        shown.contains("Message from BOSS to BACKOFFICE")
            && shown.contains("see me when you are back"),
        "{shown:?}"
    );
    let mut receipt = serde_json::Value::Null;
    for _ in 0..50 {
        receipt = svc.inbox()[0].clone();
        if receipt["shown_at"].is_i64() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(receipt["shown_at"].is_i64(), "{receipt}");
    let out = svc.cli_as("nsdaway", &["inbox"]);
    assert!(stdout(&out).contains("shown"), "{}", stdout(&out));
}

/// Processes started for a test, killed (and reaped) in `Drop`.
#[derive(Default)]
struct Processes(Vec<std::process::Child>);

impl Processes {
    /// Kills the process started last (and reaps it).
    fn stop_last(&mut self) {
        if let Some(mut child) = self.0.pop() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts `program args` as `user` with `env`, output to `log` (appended).
    fn spawn_as(
        &mut self,
        user: &User,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> &mut std::process::Child {
        use std::os::unix::process::CommandExt;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = std::process::Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(env.iter().copied())
            .uid(user.uid.as_raw())
            .gid(user.gid.as_raw())
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        self.0.push(child);
        self.0.last_mut().unwrap()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in self.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `program args` as `user` with `env` and a time limit; its output.
fn run_as(user: &User, program: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("timeout");
    cmd.arg("10")
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(env.iter().copied())
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw());
    crate::harness::run_with_stdin(cmd, None)
}

/// Waits up to `limit` for `done`, checking every 100 ms.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A display number with no X server.
fn free_display() -> u32 {
    (0..200)
        .map(|i| 100 + (std::process::id() + i) % 400)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number")
}

/// One field of a `dunstctl history` entry (`{"type": "s", "data": ...}`).
fn field<'a>(entry: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &entry[name]["data"]
}

/// A user's graphical session: an X server, a session bus and dunst, run
/// as that user (killed in `Drop`).
struct Desktop {
    session: Processes,
    home: std::path::PathBuf,
    display: String,
    bus: String,
}

impl Desktop {
    /// A new test account `name` with a session (dunst `rules` added): the
    /// account, its record, a scratch directory and the session, to be
    /// dropped in the reverse order.
    fn for_new_user(name: &str, rules: &str) -> (TestUsers, User, tempfile::TempDir, Self) {
        let accounts = TestUsers::create(&[name], None);
        let account = User::from_name(name).unwrap().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let desktop = Self::start(&account, dir.path(), rules);
        (accounts, account, dir, desktop)
    }

    /// Starts the session for `account` in `dir` (its home is `dir/home`),
    /// with `rules` appended to dunst's configuration.
    fn start(account: &User, dir: &Path, rules: &str) -> Self {
        let home = dir.join("home");
        std::fs::create_dir(&home).unwrap();
        nix::unistd::chown(&home, Some(account.uid), Some(account.gid)).unwrap();
        let log = dir.join("session.log");
        let mut session = Processes::default();
        let display = format!(":{}", free_display());
        session.spawn_as(
            account,
            "Xvfb",
            &[&display, "-screen", "0", "1024x600x24", "-nolisten", "tcp"],
            &[("HOME", home.to_str().unwrap())],
            &log,
        );
        let socket = format!("/tmp/.X11-unix/X{}", &display[1..]);
        wait_for(Duration::from_secs(30), "Xvfb", || {
            Path::new(&socket).exists()
        });
        let bus_path = home.join("bus");
        let bus = format!("unix:path={}", bus_path.display());
        session.spawn_as(
            account,
            "dbus-daemon",
            &["--session", "--nofork", &format!("--address={bus}")],
            &[("HOME", home.to_str().unwrap())],
            &log,
        );
        wait_for(Duration::from_secs(30), "the session bus", || {
            bus_path.exists()
        });
        let dunstrc = home.join("dunstrc");
        std::fs::write(
            &dunstrc,
            format!(
                "[global]\n    font = Monospace 11\n    width = 600\n    height = 200\n    origin = top-right\n    offset = 10x10\n    markup = full\n    notification_limit = 10\n{rules}"
            ),
        )
        .unwrap();
        let mut desktop = Self {
            session,
            home,
            display,
            bus,
        };
        let env = desktop.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        desktop.session.spawn_as(
            account,
            "dunst",
            &["-config", dunstrc.to_str().unwrap()],
            &env,
            &log,
        );
        wait_for(Duration::from_secs(30), "dunst on the session bus", || {
            run_as(account, "dunstctl", &["is-paused"], &env)
                .status
                .success()
        });
        desktop
    }

    /// The session's environment: HOME, DISPLAY, DBUS_SESSION_BUS_ADDRESS.
    fn env(&self) -> [(&'static str, String); 3] {
        [
            ("HOME", self.home.display().to_string()),
            ("DISPLAY", self.display.clone()),
            ("DBUS_SESSION_BUS_ADDRESS", self.bus.clone()),
        ]
    }
}

#[test]
fn the_agent_shows_messages_as_desktop_notifications_in_the_users_session() {
    if !require(
        is_root()
            && have("useradd")
            && have("ip")
            && have("Xvfb")
            && have("dbus-daemon")
            && have("dunst")
            && have("dunstctl")
            && have("busctl")
            && have("import"),
        "root, useradd, iproute2 and Debian's xvfb dbus-daemon dunst systemd (busctl) imagemagick",
    ) {
        return;
    }
    let (_accounts, account, dir, mut desktop) = Desktop::for_new_user(
        "nsdagent",
        "# dunstctl history has no urgency field: rules write it into the shown text.\n\
         [netsend_critical]\n    msg_urgency = critical\n    format = \"URGENCY=CRITICAL <b>%s</b>\\n%b\"\n\
         [netsend_normal]\n    msg_urgency = normal\n    format = \"URGENCY=NORMAL <b>%s</b>\\n%b\"\n",
    );
    let (home, display) = (desktop.home.clone(), desktop.display.clone());
    let env = desktop.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = env.as_slice();

    // The receiving host (the user is logged in there, so their alias
    // exists) and a sender on the same LAN.
    let lan = crate::harness::Lan::new("dn", &[("a", "192.0.2.45"), ("b", "192.0.2.46")]);
    let utmp = dir.path().join("utmp");
    std::fs::write(
        &utmp,
        utmp_record(std::process::id(), "pts/77", "nsdagent", ""),
    )
    .unwrap();
    let top = format!("utmp_path = \"{}\"", utmp.display());
    let mut receiver = Service::start_in(
        Some(&lan.ns("a")),
        "HOSTDA",
        "192.0.2.45",
        139,
        137,
        &top,
        "",
    );
    let sender = Service::start_in(Some(&lan.ns("b")), "HOSTDB", "192.0.2.46", 139, 137, "", "");
    wait_alias(&receiver, "NSDAGENT");
    // A message while the user has no desktop session: kept, and shown once
    // their agent starts (store-and-forward).
    let out = sender.cli(&["send", "nsdagent", "old news"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The agent, as the user, in their session.
    let agent_log = dir.path().join("agent.log");
    let config = receiver.config.to_str().unwrap().to_owned();
    desktop.session.spawn_as(
        &account,
        crate::harness::netsend_bin(),
        &["--config", &config, "agent"],
        env,
        &agent_log,
    );
    let agent_says = |what: &str| {
        std::fs::read_to_string(&agent_log)
            .unwrap_or_default()
            .contains(what)
    };
    wait_for(
        Duration::from_secs(10),
        "the agent to follow the inbox",
        || agent_says("following the inbox after message 1"),
    );
    wait_for(Duration::from_secs(10), "the waiting message", || {
        agent_says("shown message 1")
    });
    // Its receipt says it was shown, not read.
    let waiting = &receiver.inbox()[0];
    assert!(waiting["shown_at"].is_i64(), "{waiting}");
    assert_eq!(waiting["read"], false);

    let evil = "Lunch at <b>noon</b> & \x1b]0;pwned\x07\x1b[31mred\x1b[0m\u{9b}2J?\r\nsecond line";
    let out = sender.cli(&["send", "--from", "MALLORY", "nsdagent", evil]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sender.cli(&["send", "*", "The server goes down in 5 minutes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(Duration::from_secs(15), "two notifications", || {
        agent_says("shown message 2") && agent_says("shown message 3")
    });

    // A restart of the service: the agent finds it again.
    receiver.crash_and_restart();
    let out = sender.cli(&["send", "--from", "ALICE", "nsdagent", "after the restart"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(
        Duration::from_secs(30),
        "the message after the restart",
        || agent_says("shown message 4"),
    );

    // What the screen shows.
    std::thread::sleep(Duration::from_millis(700));
    let shot = home.join("notification.png");
    let out = run_as(
        &account,
        "import",
        &[
            "-display",
            &display,
            "-window",
            "root",
            shot.to_str().unwrap(),
        ],
        env,
    );
    assert!(out.status.success(), "import: {}", stderr(&out));
    let artefacts = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            Into::into,
        )
        .join("test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let saved = artefacts.join("notification.png");
    std::fs::copy(&shot, &saved).unwrap();
    println!("screenshot of the notifications: {}", saved.display());

    // What dunst was given: close them all (history holds closed ones).
    let displayed = stdout(&run_as(&account, "dunstctl", &["count", "displayed"], env));
    assert!(displayed.trim() != "0", "nothing displayed: {displayed}");
    assert!(run_as(&account, "dunstctl", &["close-all"], env)
        .status
        .success());
    let mut history = serde_json::Value::Null;
    wait_for(Duration::from_secs(5), "dunst's history", || {
        let out = run_as(&account, "dunstctl", &["history"], env);
        history = serde_json::from_slice(&out.stdout).unwrap_or_default();
        history["data"][0].as_array().is_some_and(|a| a.len() >= 3)
    });
    let entries = history["data"][0].as_array().unwrap();
    assert_eq!(entries.len(), 4, "each message shown once: {history}");
    let find = |summary: &str| {
        entries
            .iter()
            .find(|e| field(e, "summary") == summary)
            .unwrap_or_else(|| panic!("no notification {summary:?}: {history}"))
    };
    let direct = find("Message from MALLORY to NSDAGENT");
    let body = field(direct, "body").as_str().unwrap();
    // dunst reads markup, so the text's own tags arrive escaped (shown as typed).
    assert!(
        body.starts_with(
            "Lunch at &lt;b&gt;noon&lt;/b&gt; &amp; red?\nsecond line\n\nReceived at "
        ),
        "{body:?}"
    );
    assert!(
        !body.contains("pwned") && !body.chars().any(|c| c.is_control() && c != '\n'),
        "{body:?}"
    );
    assert_eq!(field(direct, "appname"), "netsend");
    let urgency = |e: &serde_json::Value| {
        let shown = field(e, "message").as_str().unwrap_or_default().to_owned();
        shown
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(urgency(direct), "URGENCY=NORMAL", "{direct}");
    assert_ne!(field(direct, "timeout"), 0, "{direct}");
    let broadcast = find("Message from root to HOSTDA");
    // Critical, and shown until dismissed.
    assert_eq!(urgency(broadcast), "URGENCY=CRITICAL", "{broadcast}");
    assert_eq!(field(broadcast, "timeout"), 0, "{broadcast}");
    assert!(field(broadcast, "body")
        .as_str()
        .unwrap()
        .starts_with("The server goes down in 5 minutes"));
    assert_eq!(
        urgency(find("Message from ALICE to NSDAGENT")),
        "URGENCY=NORMAL"
    );
    assert!(field(find("Message from root to NSDAGENT"), "body")
        .as_str()
        .unwrap()
        .starts_with("old news"));
}

#[test]
fn the_agents_mark_read_and_reply_actions_work_through_dunst() {
    if !require(
        is_root()
            && have("useradd")
            && have("Xvfb")
            && have("dbus-daemon")
            && have("dunst")
            && have("dunstctl")
            && have("xterm"),
        "root, useradd and Debian's xvfb dbus-daemon dunst xterm",
    ) {
        return;
    }
    // `dunstctl action` runs a notification's action named by its rule, as
    // a middle click would: "Mark read" for one text, "Reply" for another.
    let (_accounts, account, dir, mut desktop) = Desktop::for_new_user(
        "nsdact",
        "[netsend_mark]\n    body = \"*MARK ME*\"\n    action_name = \"mark-read\"\n\
         [netsend_reply]\n    body = \"*ANSWER ME*\"\n    action_name = \"reply\"\n",
    );
    let utmp = dir.path().join("utmp");
    std::fs::write(
        &utmp,
        utmp_record(std::process::id(), "pts/78", "nsdact", ""),
    )
    .unwrap();
    let svc = Service::start(
        "HOSTACT",
        &format!("utmp_path = \"{}\"", utmp.display()),
        "",
    );
    wait_alias(&svc, "NSDACT");

    // The agent, with xterm as the user's terminal emulator.
    let agent_log = dir.path().join("agent.log");
    let env = desktop.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("TERMINAL", "xterm"));
    let config = svc.config.to_str().unwrap().to_owned();
    desktop.session.spawn_as(
        &account,
        crate::harness::netsend_bin(),
        &["--config", &config, "agent"],
        &env,
        &agent_log,
    );
    let agent_says = |what: &str| {
        std::fs::read_to_string(&agent_log)
            .unwrap_or_default()
            .contains(what)
    };
    wait_for(Duration::from_secs(10), "the agent", || {
        agent_says("following the inbox after message 0")
    });
    let read = |id: i64| {
        svc.inbox()
            .into_iter()
            .find(|m| m["id"] == id)
            .is_some_and(|m| m["read"] == true && m["read_at"].is_i64())
    };

    // "Mark read".
    let out = svc.cli(&["send", "--from", "ALICE", "nsdact", "MARK ME please"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(Duration::from_secs(10), "the first notification", || {
        agent_says("shown message 1")
    });
    assert!(!read(1));
    let out = run_as(&account, "dunstctl", &["action", "0"], &env);
    assert!(out.status.success(), "dunstctl action: {}", stderr(&out));
    wait_for(Duration::from_secs(10), "mark read", || {
        agent_says("marked message 1 read")
    });
    assert!(read(1), "{:#?}", svc.inbox());
    assert!(run_as(&account, "dunstctl", &["close-all"], &env)
        .status
        .success());

    // "Reply": dunst has no inline reply, so the popup opens on the message
    // in xterm, which marks it read when it opens it.
    let out = svc.cli(&["send", "--from", "BOB", "nsdact", "ANSWER ME please"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(Duration::from_secs(10), "the second notification", || {
        agent_says("shown message 2")
    });
    assert!(!read(2));
    let out = run_as(&account, "dunstctl", &["action", "0"], &env);
    assert!(out.status.success(), "dunstctl action: {}", stderr(&out));
    wait_for(Duration::from_secs(10), "the popup in xterm", || {
        agent_says("opened `netsend popup --id 2` in xterm")
    });
    wait_for(
        Duration::from_secs(20),
        "the popup to open message 2",
        || read(2),
    );
    let log = std::fs::read_to_string(&agent_log).unwrap_or_default();
    assert!(!log.contains("marked message 2 read"), "{log}");

    // With no terminal emulator that starts, Reply says what to run, in a
    // notification of its own.
    desktop.session.stop_last();
    assert!(run_as(&account, "dunstctl", &["close-all"], &env)
        .status
        .success());
    let env_none: Vec<(&str, &str)> = env
        .iter()
        .map(|&(k, v)| {
            (
                k,
                if k == "TERMINAL" {
                    "/nonexistent/term"
                } else {
                    v
                },
            )
        })
        .collect();
    let second_log = dir.path().join("agent2.log");
    desktop.session.spawn_as(
        &account,
        crate::harness::netsend_bin(),
        &["--config", &config, "agent"],
        &env_none,
        &second_log,
    );
    let second_says = |what: &str| {
        std::fs::read_to_string(&second_log)
            .unwrap_or_default()
            .contains(what)
    };
    wait_for(Duration::from_secs(10), "the second agent", || {
        second_says("following the inbox after message 2")
    });
    let out = svc.cli(&["send", "--from", "BOB", "nsdact", "ANSWER ME again"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(Duration::from_secs(10), "the third notification", || {
        second_says("shown message 3")
    });
    let out = run_as(&account, "dunstctl", &["action", "0"], &env);
    assert!(out.status.success(), "dunstctl action: {}", stderr(&out));
    wait_for(Duration::from_secs(10), "the hint", || {
        second_says("to reply, run `netsend popup --id 3`")
    });
    assert!(run_as(&account, "dunstctl", &["close-all"], &env)
        .status
        .success());
    let mut history = serde_json::Value::Null;
    wait_for(
        Duration::from_secs(5),
        "the hint in dunst's history",
        || {
            let out = run_as(&account, "dunstctl", &["history"], &env);
            history = serde_json::from_slice(&out.stdout).unwrap_or_default();
            history["data"][0].as_array().is_some_and(|entries| {
                entries.iter().any(|e| {
                    field(e, "summary") == "To reply"
                        && field(e, "body")
                            .as_str()
                            .is_some_and(|b| b.contains("netsend popup --id 3"))
                })
            })
        },
    );
    assert!(!read(3));
}
