//! Running the service like a well-kept daemon: `messenger status --json`
//! and its exit codes for monitoring, systemd's notification protocol
//! (readiness, watchdog, reload, stop) and configuration reload.

use std::time::Duration;

use crate::harness::{netsend_bin, stderr, stdout, Service};

/// `messenger status --json` carries the human output's facts, and the
/// exit status says running (0), not running (3).
#[test]
fn status_json_and_exit_codes_for_monitoring() {
    let svc = Service::start("OPSHOST", "", "");
    let human = svc.cli(&["messenger", "status"]);
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    let human = stdout(&human);
    let send = svc.cli(&["send", "opshost", "hello", "status"]);
    assert!(send.status.success(), "{}", stderr(&send));
    let out = svc.cli(&["messenger", "status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], true, "{v}");
    assert_eq!(v["computer_name"], "OPSHOST");
    assert_eq!(v["pid"], svc.pid());
    assert_eq!(v["messages"], 1, "{v}");
    assert_eq!(v["queued"], 0, "{v}");
    assert_eq!(v["dropped"], 0, "{v}");
    assert!(v["drops"].is_object(), "{v}");
    assert_eq!(v["reload"]["state"], "none", "{v}");
    let session = v["session_addresses"][0].as_str().unwrap();
    assert_eq!(session, svc.session.to_string());
    assert!(human.contains(session), "{human}");
    let names = v["names"].as_array().unwrap();
    let computer = names
        .iter()
        .find(|n| n["name"] == "OPSHOST")
        .unwrap_or_else(|| panic!("{v}"));
    // Loopback has no broadcast segment: the name is only ours locally.
    assert_eq!(computer["state"], "local", "{v}");
    assert!(human.contains("OPSHOST"), "{human}");
    for field in ["workgroup", "name_addresses", "remote_addresses"] {
        assert!(v.get(field).is_some(), "{field}: {v}");
    }

    let keep = tempfile::tempdir().unwrap();
    let config = keep.path().join("netsend.toml");
    std::fs::copy(&svc.config, &config).unwrap();
    assert!(svc.stop().success());
    let status = |json: bool| {
        let mut cmd = std::process::Command::new(netsend_bin());
        cmd.arg("--config")
            .arg(&config)
            .args(["messenger", "status"]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let down = status(false);
    assert_eq!(down.status.code(), Some(3), "{}", stderr(&down));
    assert!(stderr(&down).contains("NERR_MsgNotStarted (2284)"));
    let down = status(true);
    assert_eq!(down.status.code(), Some(3), "{}", stderr(&down));
    let v: serde_json::Value = serde_json::from_slice(&down.stdout).unwrap();
    assert_eq!(v["running"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("2284"), "{v}");
}

/// A notification socket of the test's own, as systemd would bind it.
struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    name: String,
}

impl NotifySocket {
    /// An abstract socket (`@name`), as systemd's own is.
    fn bind(tag: &str) -> Self {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("netsend-e2e-{tag}-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = std::os::unix::net::UnixDatagram::bind_addr(&address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self { socket, name }
    }

    /// The service's environment: this socket, and a watchdog of `usec`.
    fn env(&self, usec: u64) -> Vec<String> {
        vec![
            "env".into(),
            format!("NOTIFY_SOCKET=@{}", self.name),
            format!("WATCHDOG_USEC={usec}"),
        ]
    }

    /// Datagrams until one satisfies `done` (at most 20 s); all of them.
    fn until(&self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        for _ in 0..100 {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let stop = done(&text);
                got.push(text);
                if stop {
                    return got;
                }
            }
        }
        panic!("no such notification; got {got:?}");
    }
}

/// Whether a notification sets `assignment` (`READY=1`, ...).
fn says(datagram: &str, assignment: &str) -> bool {
    datagram.lines().any(|l| l == assignment)
}

fn hangup(svc: &Service) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(svc.pid()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
}

/// The service speaks systemd's notification protocol on the socket in
/// `$NOTIFY_SOCKET`: READY=1 once it serves, WATCHDOG=1 while its main
/// loop makes progress, RELOADING=1 then READY=1 around a reload,
/// STOPPING=1 at a stop; and no WATCHDOG=1 while its control socket
/// cannot be reached.
#[test]
fn readiness_watchdog_reload_and_stop_notifications_in_order() {
    let notify = NotifySocket::bind("order");
    let env = notify.env(1_000_000);
    let wrapper: Vec<&str> = env.iter().map(String::as_str).collect();
    let svc = Service::start_under(&wrapper, "NOTIFYHOST", "", "");
    let first = notify.until(|d| says(d, "READY=1"));
    assert!(
        first.iter().all(|d| !says(d, "WATCHDOG=1")),
        "watchdog before ready: {first:?}"
    );
    // The service answers as soon as it said it was ready.
    let status = svc.cli(&["messenger", "status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let status_line = notify.until(|d| d.starts_with("STATUS="));
    assert!(
        status_line.last().unwrap().contains("NOTIFYHOST"),
        "{status_line:?}"
    );
    notify.until(|d| says(d, "WATCHDOG=1"));
    notify.until(|d| says(d, "WATCHDOG=1"));
    hangup(&svc);
    let reload = notify.until(|d| says(d, "READY=1"));
    let reloading = reload
        .iter()
        .position(|d| says(d, "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {reload:?}"));
    assert!(reload[reloading]
        .lines()
        .any(|l| l.starts_with("MONOTONIC_USEC=")));
    // A control socket nobody can reach: the main loop is not making
    // progress, and the watchdog is not fed (systemd would restart it).
    let control = svc.dir.path().join("control.sock");
    let moved = svc.dir.path().join("control.moved");
    std::fs::rename(&control, &moved).unwrap();
    let mut buf = [0; 4096];
    let mut fed = Vec::new();
    // Any notification already on its way is read first.
    for _ in 0..10 {
        if let Ok(n) = notify.socket.recv(&mut buf) {
            fed.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    fed.clear();
    for _ in 0..15 {
        if let Ok(n) = notify.socket.recv(&mut buf) {
            fed.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert!(
        fed.iter().all(|d| !says(d, "WATCHDOG=1")),
        "fed while wedged: {fed:?}"
    );
    std::fs::rename(&moved, &control).unwrap();
    notify.until(|d| says(d, "WATCHDOG=1"));
    let mut svc = svc;
    let log = svc.log_text();
    assert!(log.contains("made no progress"), "{log}");
    assert!(svc.stop().success());
    notify.until(|d| says(d, "STOPPING=1"));
}

/// SIGHUP under load: a sender streams messages while the configuration is
/// rewritten and reloaded several times; every acknowledged message is in
/// the inbox and no send is refused; a bad file is rejected and logged and
/// the old configuration stays; new filters and limits apply at once; a
/// changed port is reported as needing a restart.
#[test]
fn reload_under_load_loses_nothing_and_applies_what_changed() {
    let limits = "[limits]\nmessages_per_minute = 100000\nmessage_burst = 100000\n\
                  sender_messages_per_minute = 100000\nsender_message_burst = 100000\n";
    let mut svc = Service::start("RELOADHOST", "", limits);
    let original = std::fs::read_to_string(&svc.config).unwrap();
    // Clients read a copy: the service's own file is broken on purpose below.
    let client = svc.dir.path().join("client.toml");
    std::fs::write(&client, &original).unwrap();
    let cli = |args: &[&str]| {
        std::process::Command::new(netsend_bin())
            .arg("--config")
            .arg(&client)
            .args(args)
            .output()
            .unwrap()
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..2)
        .map(|t| {
            let (bin, config, stop) = (netsend_bin(), client.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut sent = 0;
                let mut failures = Vec::new();
                for i in 0..400 {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) && i >= 20 {
                        break;
                    }
                    let out = std::process::Command::new(bin)
                        .arg("--config")
                        .arg(&config)
                        .args(["send", "reloadhost", &format!("load {t}-{i}")])
                        .output()
                        .unwrap();
                    if out.status.success() {
                        sent += 1;
                    } else {
                        failures.push(stderr(&out));
                    }
                }
                (sent, failures)
            })
        })
        .collect();
    let path = svc.config.clone();
    let rewrite = |text: &str| {
        // Written whole and renamed into place, as editors and config
        // management do, so a reload never reads half a file.
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    for round in 0..4 {
        rewrite(&original.replace(
            "message_burst = 100000\n",
            &format!("message_burst = {}\n", 100_000 + round),
        ));
        hangup(&svc);
        std::thread::sleep(Duration::from_millis(150));
    }
    rewrite("this is [not toml\n");
    hangup(&svc);
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut acknowledged = 0;
    for s in senders {
        let (sent, failures) = s.join().unwrap();
        assert!(failures.is_empty(), "refused during reloads: {failures:?}");
        acknowledged += sent;
    }
    let status: serde_json::Value =
        serde_json::from_slice(&cli(&["messenger", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["reload"]["state"], "rejected", "{status}");
    assert!(
        status["reload"]["error"]
            .as_str()
            .unwrap()
            .contains("netsend.toml"),
        "{status}"
    );
    // The old configuration stays in force; the service still serves.
    let after = cli(&["send", "reloadhost", "after the bad file"]);
    assert!(after.status.success(), "{}", stderr(&after));
    rewrite(&original);
    let inbox = svc.wait_inbox(acknowledged + 1);
    assert_eq!(inbox.len(), acknowledged + 1, "acknowledged messages lost");
    let log = svc.log_text();
    assert!(log.contains("configuration reload rejected"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");

    // New filters and limits apply to the next message.
    rewrite(&format!(
        "{}\n[filter]\ndeny_senders = [\"BLOCKED\"]\n",
        original
            .replace(
                "sender_messages_per_minute = 100000\nsender_message_burst = 100000\n",
                "sender_messages_per_minute = 1\nsender_message_burst = 1\n",
            )
            .replace("session_port = 0", "session_port = 1139")
    ));
    hangup(&svc);
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        status =
            serde_json::from_slice(&svc.cli(&["messenger", "status", "--json"]).stdout).unwrap();
        if status["reload"]["state"] == "applied" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status["reload"]["state"], "applied", "{status}");
    let applied = status["reload"]["applied"].to_string();
    assert!(applied.contains("filter.deny_senders"), "{status}");
    assert!(applied.contains("limits.sender_message_burst"), "{status}");
    assert_eq!(
        status["reload"]["restart_needed"],
        serde_json::json!(["network.session_port"]),
        "{status}"
    );
    // The port is still the one bound at start.
    assert_eq!(status["session_addresses"][0], svc.session.to_string());
    let human = stdout(&svc.cli(&["messenger", "status"]));
    assert!(
        human.contains("needs a restart: network.session_port"),
        "{human}"
    );
    let blocked = svc.cli(&["send", "--from", "blocked", "reloadhost", "hi"]);
    assert!(!blocked.status.success(), "a denied sender got through");
    let once = svc.cli(&["send", "--from", "rated", "reloadhost", "one"]);
    assert!(once.status.success(), "{}", stderr(&once));
    let twice = svc.cli(&["send", "--from", "rated", "reloadhost", "two"]);
    assert!(
        !twice.status.success(),
        "the new sender limit was not applied"
    );
    let status: serde_json::Value =
        serde_json::from_slice(&svc.cli(&["messenger", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["drops"]["denied_sender"], 1, "{status}");
    assert_eq!(status["drops"]["sender_rate"], 1, "{status}");
    let log = svc.log_text();
    assert!(log.contains("take effect only after a restart"), "{log}");
}
