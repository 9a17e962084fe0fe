//! The Alerter end to end: `netsend alert` on one host reaching the
//! administrators' alias on another, batching, the outgoing queue, the
//! journal and disk watches, and the `netsend-alert@.service` template.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::delivery::free_port;
use crate::harness::{
    have, is_root, lans_available, netsend_bin, require, stderr, stdout, Lan, Service, TestUsers,
};

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
    // The admin's inbox heads it as an alert.
    let id = alerts[0]["id"].to_string();
    let read = stdout(&admin.cli(&["inbox", "read", &id]));
    assert!(read.starts_with("Alert from HOSTA to OPS on "), "{read}");
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
    for i in 2..100 {
        let out = raiser.cli(&["alert"].iter().chain(&words).copied().collect::<Vec<_>>());
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("batched with identical ones ({i} so far)")),
            "{}",
            stdout(&out)
        );
    }
    // The hundredth, with the report as JSON.
    let out = raiser.cli(
        &["alert", "--json"]
            .iter()
            .chain(&words)
            .copied()
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["held"],
        serde_json::json!({"reason": "batched", "count": 100})
    );
    assert_eq!(report["delivered"], serde_json::json!([]));
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

/// Runs `args` inside `svc`'s mount namespace (its private journald).
fn in_namespace(
    svc: &Service,
    args: &[&str],
    env: &[(&str, &std::path::Path)],
) -> std::process::Output {
    let mut cmd = Command::new("nsenter");
    cmd.args(["--mount", "--target", &svc.pid().to_string()])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A `logger` into the private journal (which has no /dev/log link).
fn log_crit(svc: &Service, priority: &str, tag: &str, text: &str) {
    let out = in_namespace(
        svc,
        &[
            "logger",
            "-p",
            priority,
            "-t",
            tag,
            "-u",
            "/run/systemd/journal/dev-log",
            text,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn critical_journal_entries_and_a_failed_unit_raise_alerts() {
    if !crate::systemd::can_run(&["journald"])
        || !require(have("logger"), "logger (Debian: bsdutils)")
    {
        return;
    }
    let port = free_port();
    let admin = Service::start_in(None, "OPS", "127.0.0.1", port, 0, "", "");
    let scratch = tempfile::tempdir().unwrap();
    let seed = scratch.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    let config = alerter_config(
        &[("OPS", port)],
        "gather_secs = 5\njournal = { priority = \"crit\" }\n",
    );
    let (_daemons, svc) = crate::systemd::start_with(&["journald"], &seed, "HOSTJ", "", &config);
    // Three identical critical entries and one below the priority.
    for _ in 0..3 {
        log_crit(&svc, "crit", "raid", "md0 degraded");
    }
    log_crit(&svc, "info", "raid", "md1 resync finished");
    let alerts = wait_alerts(&admin, 1);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0]["text"],
        "*** ALERT ERRORLOG from journal on HOSTJ ***\ncrit raid: md0 degraded\n(3 times in the last 5 seconds)"
    );
    assert_eq!(alert_counts(&svc)["batched"], 2);

    // The template unit's command line, as systemd runs it for a failed
    // backup.service (netsend-alert@backup.service.service: %i is
    // backup.service), with that unit's lines in the journal.
    let fields = scratch.path().join("fields");
    for line in [
        "tar: /srv/data: Cannot open: Permission denied",
        "backup: exit status 2",
    ] {
        std::fs::write(
            &fields,
            format!("MESSAGE={line}\nOBJECT_SYSTEMD_UNIT=backup.service\nPRIORITY=3\n"),
        )
        .unwrap();
        let out = in_namespace(
            &svc,
            &["logger", &format!("--journald={}", fields.display())],
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../packaging/netsend-alert@.service"),
    )
    .unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart in the template");
    let command = exec.replace("%i", "backup.service");
    let mut words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[0], "/usr/bin/netsend");
    words[0] = netsend_bin();
    let out = in_namespace(&svc, &words, &[("NETSEND_CONFIG", &svc.config)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("The alert was sent to OPS"),
        "{}",
        stdout(&out)
    );
    let alerts = wait_alerts(&admin, 2);
    let failed = alerts[1]["text"].as_str().unwrap();
    assert!(
        failed.starts_with(
            "*** ALERT ADMIN from systemd on HOSTJ ***\nbackup.service failed.\nLast journal lines:\n"
        ),
        "{failed}"
    );
    assert!(
        failed.contains("tar: /srv/data: Cannot open: Permission denied"),
        "{failed}"
    );
    assert!(failed.ends_with("backup: exit status 2"), "{failed}");
}

/// A tmpfs of `size` mounted on a temporary directory, unmounted on drop.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn the_disk_watch_alerts_once_when_a_disk_fills_and_once_when_it_recovers() {
    if !require(is_root() && have("mount"), "root and mount") {
        return;
    }
    let disk = SmallDisk::mount("1m");
    let path = disk.0.path().to_str().unwrap().to_owned();
    let port = free_port();
    let admin = Service::start_in(None, "OPS", "127.0.0.1", port, 0, "", "");
    let svc = Service::start(
        "DISKHOST",
        "",
        &alerter_config(
            &[("OPS", port)],
            &format!(
                "gather_secs = 0\ndisk = {{ paths = [\"{path}\"], min_free_percent = 50, interval_secs = 1 }}\n"
            ),
        ),
    );
    let fill = disk.0.path().join("fill");
    std::fs::write(&fill, vec![0u8; 700 * 1024]).unwrap();
    let alerts = wait_alerts(&admin, 1);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let low = alerts[0]["text"].as_str().unwrap();
    assert!(
        low.starts_with(&format!(
            "*** ALERT ADMIN from disk on DISKHOST ***\nDrive {path} is nearly full. "
        )),
        "{low}"
    );
    // Still full over several checks, fuller still: no second alert.
    std::fs::write(disk.0.path().join("more"), vec![0u8; 100 * 1024]).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::remove_file(&fill).unwrap();
    let alerts = wait_alerts(&admin, 2);
    std::thread::sleep(Duration::from_millis(2500));
    let alerts_now = wait_alerts(&admin, 2);
    assert_eq!(alerts_now.len(), 2, "{alerts_now:?}");
    let recovered = alerts[1]["text"].as_str().unwrap();
    assert!(
        recovered.contains(&format!("Drive {path} has "))
            && recovered.ends_with("available again (at least 50% free)."),
        "{recovered}"
    );
    drop(svc);
}

#[test]
fn the_alert_template_unit_passes_systemd_analyze_verify() {
    if !require(have("systemd-analyze"), "systemd-analyze (Debian: systemd)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../packaging/netsend-alert@.service"),
    )
    .unwrap();
    // verify checks that the binary exists: point it at the one under test.
    std::fs::write(
        dir.path().join("netsend-alert@.service"),
        template.replace("/usr/bin/netsend", netsend_bin()),
    )
    .unwrap();
    let instance = dir.path().join("netsend-alert@backup.service.service");
    crate::packaging::verify_unit(&instance, "netsend-alert@backup.service.service");
}
