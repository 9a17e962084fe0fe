//! Running the service like a well-kept daemon: `messenger status --json`
//! and its exit codes for monitoring.

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
