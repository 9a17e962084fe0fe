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
/// rewritten and reloaded eight times; every acknowledged message is in
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
    for round in 0..8 {
        rewrite(&original.replace(
            "message_burst = 100000\n",
            &format!("message_burst = {}\n", 100_000 + round),
        ));
        hangup(&svc);
        std::thread::sleep(Duration::from_millis(100));
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
    eprintln!("{acknowledged} messages acknowledged and stored across 9 reloads");
}

/// Parses OpenMetrics text with Prometheus's own Python parser (Debian's
/// python3-prometheus-client) and prints every sample as a JSON line.
const PARSE_OPENMETRICS: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        print(json.dumps({"type": family.type, "name": s.name, "labels": s.labels, "value": s.value}))
"#;

/// One HTTP/1.1 exchange with `address`: the raw response.
fn http(address: &str, request: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// `[metrics] listen`: after real traffic, `/metrics` parses with
/// Prometheus's text parser and its counters say what happened.
#[test]
fn metrics_scrape_parses_and_counts_the_traffic() {
    let parser = "/usr/bin/python3";
    let has_parser = std::process::Command::new(parser)
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !crate::harness::require(has_parser, "python3-prometheus-client") {
        return;
    }
    let mut svc = Service::start(
        "METRICHOST",
        "",
        "[metrics]\nlisten = \"127.0.0.1:0\"\n[filter]\ndeny_senders = [\"SPAMMER\"]\n\
         [log]\nmessages = true\n",
    );
    let log = svc.log_text();
    let address = log
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("metrics="))
        .unwrap_or_else(|| panic!("no metrics address: {log}"))
        .to_owned();
    for i in 0..3 {
        let out = svc.cli(&["send", "metrichost", &format!("counted {i}")]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let spam = svc.cli(&["send", "--from", "spammer", "metrichost", "no"]);
    assert!(!spam.status.success());
    svc.wait_inbox(3);
    let scrape = || {
        let answer = http(
            &address,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\n\r\n",
        );
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(head.contains("application/openmetrics-text"), "{head}");
        let out = crate::harness::run_with_stdin(
            {
                let mut c = std::process::Command::new(parser);
                c.args(["-c", PARSE_OPENMETRICS]);
                c
            },
            Some(body.as_bytes()),
        );
        assert!(out.status.success(), "parser: {}\n{body}", stderr(&out));
        let samples: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (samples, body.to_owned())
    };
    let value = |samples: &[serde_json::Value], name: &str, labels: serde_json::Value| {
        samples
            .iter()
            .find(|s| s["name"] == name && s["labels"] == labels)
            .map(|s| s["value"].as_f64().unwrap())
    };
    // The message log's writes are counted as they finish.
    let mut found = None;
    for _ in 0..100 {
        let (samples, body) = scrape();
        let written = value(
            &samples,
            "netsend_deliveries_total",
            serde_json::json!({"channel": "message_log", "outcome": "written"}),
        );
        if written == Some(3.0) {
            found = Some((samples, body));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (samples, body) = found.expect("three message log writes counted");
    let at = |name: &str, labels: serde_json::Value| {
        value(&samples, name, labels.clone())
            .unwrap_or_else(|| panic!("no {name} {labels}:\n{body}"))
    };
    let transport = |t: &str| serde_json::json!({ "transport": t });
    assert_eq!(
        at("netsend_messages_received_total", transport("session")),
        3.0
    );
    assert_eq!(at("netsend_messages_sent_total", transport("session")), 3.0);
    assert_eq!(
        at(
            "netsend_drops_total",
            serde_json::json!({"reason": "denied_sender"})
        ),
        1.0
    );
    assert_eq!(
        at(
            "netsend_receive_to_commit_seconds_count",
            serde_json::json!({})
        ),
        3.0
    );
    // Four sends: three delivered, the spammer's refused by the recipient.
    assert_eq!(at("netsend_send_seconds_count", serde_json::json!({})), 4.0);
    assert_eq!(at("netsend_queue_depth", serde_json::json!({})), 0.0);
    assert_eq!(
        at("netsend_names", serde_json::json!({"state": "local"})),
        1.0
    );
    assert!(at("netsend_control_clients", serde_json::json!({})) >= 0.0);
    let families: Vec<&str> = samples.iter().filter_map(|s| s["type"].as_str()).collect();
    assert!(families.contains(&"histogram") && families.contains(&"counter"));

    let other = http(&address, b"GET / HTTP/1.1\r\n\r\n");
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    let post = http(&address, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let bad = http(&address, b"GET /metrics HTTP/9\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let long = [b"GET /metrics HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 9000]].concat();
    let long = http(&address, &long);
    assert!(long.starts_with("HTTP/1.1 431"), "{long}");
}
