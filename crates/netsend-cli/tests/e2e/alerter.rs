//! The Alerter end to end: `netsend alert` on one host reaching the
//! administrators' alias on another, batching, the outgoing queue, the
//! journal and disk watches, and the `netsend-alert@.service` template.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{
    have, is_root, lans_available, netsend_bin, require, stderr, stdout, Lan, Service, TestUsers,
};

/// A free TCP port on loopback.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `[alerter]` table and a static name for each alert name at its port.
fn alerter_config(names: &[(&str, u16)], extra: &str) -> String {
    let list: Vec<String> = names.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let mut config = String::new();
    for (name, port) in names {
        config.push_str(&format!(
            "[[static_names]]\nname = \"{name}\"\naddress = \"127.0.0.1:{port}\"\n"
        ));
    }
    config.push_str(&format!(
        "[queue]\nretry_secs = 1\nmax_retry_secs = 1\n[alerter]\nnames = [{}]\n{extra}",
        list.join(", ")
    ));
    config
}

/// The alert messages in `svc`'s inbox, waiting (bounded) for `n`.
fn wait_alerts(svc: &Service, n: usize) -> Vec<serde_json::Value> {
    let mut alerts = Vec::new();
    for _ in 0..300 {
        alerts = svc
            .inbox()
            .into_iter()
            .filter(|m| m["text"].as_str().unwrap_or("").starts_with("*** ALERT "))
            .collect();
        if alerts.len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    alerts
}

/// `messenger status --json`'s alert counters.
fn alert_counts(svc: &Service) -> serde_json::Value {
    let out = svc.cli(&["messenger", "status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["alerts"].clone()
}

#[test]
fn a_permitted_users_alert_reaches_the_admins_alias_on_another_host_and_others_are_refused() {
    if !lans_available()
        || !require(
            is_root() && have("runuser") && have("useradd"),
            "root, runuser and useradd",
        )
    {
        return;
    }
    let _users = TestUsers::create(&["alertok", "alertno"], Some(("alertops", &["alertok"])));
    let lan = Lan::new("al", &[("a", "192.0.2.71"), ("b", "192.0.2.72")]);
    let admin = Service::start_in(Some(&lan.ns("b")), "HOSTB", "192.0.2.72", 139, 137, "", "");
    let out = admin.cli(&["name", "OPS", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let raiser = Service::start_in(
        Some(&lan.ns("a")),
        "HOSTA",
        "192.0.2.71",
        139,
        137,
        "",
        "[alerter]\nnames = [\"OPS\"]\ngroups = [\"alertops\"]\ngather_secs = 0\n",
    );
    let out = raiser.cli_as(
        "alertok",
        &["alert", "--service", "backup", "Tape", "drive", "offline"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("The alert was sent to OPS (192.0.2.72"),
        "{}",
        stdout(&out)
    );
    let out = raiser.cli_as("alertno", &["alert", "not", "allowed"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("(5)"), "{err}");
    assert!(err.contains("alertops"), "{err}");
    assert!(err.contains("hint: alerts may be raised by root"), "{err}");
    let alerts = wait_alerts(&admin, 1);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["from"], "HOSTA");
    assert_eq!(alerts[0]["to"], "OPS");
    assert_eq!(
        alerts[0]["text"],
        "*** ALERT ADMIN from backup on HOSTA ***\nTape drive offline"
    );
    // The refused alert was never raised.
    assert_eq!(alert_counts(&raiser)["raised"], 1);
}

/// Starts `netsend alert` words... in the background.
fn alert_in_background(svc: &Service, words: &[&str]) -> Child {
    Command::new(netsend_bin())
        .arg("--config")
        .arg(&svc.config)
        .arg("alert")
        .args(words)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_burst_of_a_hundred_identical_alerts_arrives_as_one_message_with_the_count() {
    let port = free_port();
    let admin = Service::start_in(None, "OPS", "127.0.0.1", port, 0, "", "");
    let raiser = Service::start(
        "BURSTHOST",
        "",
        &alerter_config(&[("OPS", port)], "gather_secs = 30\n"),
    );
    let words = [
        "--class",
        "errorlog",
        "--service",
        "raid",
        "md0",
        "degraded",
    ];
    let first = alert_in_background(&raiser, &words);
    for _ in 0..200 {
        if alert_counts(&raiser)["raised"] == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 2..=100 {
        let out = raiser.cli(&["alert"].iter().chain(&words).copied().collect::<Vec<_>>());
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("batched with identical ones ({i} so far)")),
            "{}",
            stdout(&out)
        );
    }
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("The alert was sent to OPS"));
    let alerts = wait_alerts(&admin, 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(wait_alerts(&admin, 1).len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0]["text"],
        "*** ALERT ERRORLOG from raid on BURSTHOST ***\nmd0 degraded\n(100 times in the last 30 seconds)"
    );
    let counts = alert_counts(&raiser);
    assert_eq!(
        (&counts["raised"], &counts["sent"], &counts["batched"]),
        (&100.into(), &1.into(), &99.into()),
        "{counts}"
    );
    let human = stdout(&raiser.cli(&["messenger", "status"]));
    assert!(
        human.contains("alerts:        100 raised, 1 sent, 99 suppressed (99 batched, 0 capped)"),
        "{human}"
    );
}

#[test]
fn an_alert_for_a_host_that_is_down_waits_in_the_queue_across_a_restart() {
    let port = free_port();
    let mut raiser = Service::start(
        "QALERTS",
        "",
        &alerter_config(&[("LATER", port)], "gather_secs = 0\n"),
    );
    let out = raiser.cli(&["alert", "--service", "ups", "Power", "failure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("The alert waits in the queue for LATER (queue id 1)"),
        "{}",
        stdout(&out)
    );
    // Durable: a crash of the raising host does not lose it.
    raiser.crash_and_restart();
    let queue = stdout(&raiser.cli(&["queue"]));
    assert!(
        queue.contains("to LATER: *** ALERT ADMIN from ups"),
        "{queue}"
    );
    let admin = Service::start_in(None, "LATER", "127.0.0.1", port, 0, "", "");
    let alerts = wait_alerts(&admin, 1);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0]["text"],
        "*** ALERT ADMIN from ups on QALERTS ***\nPower failure"
    );
}

#[test]
fn without_alert_names_the_alerter_is_off() {
    let svc = Service::start("NOALERTS", "", "");
    let out = svc.cli(&["alert", "anyone", "there"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("(2184)"), "{err}");
    assert!(err.contains("hint: set [alerter] names"), "{err}");
    assert!(stdout(&svc.cli(&["messenger", "status"])).contains("alerts:        off"));
}
