//! Start-up as root: nothing in the state directory, which the service user
//! controls, makes root change, write or reveal another file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use crate::harness::{
    have, is_root, netsend_bin, require, run_with_stdin, stderr, Service, TestUsers,
};

/// Runs `netsend --config CONFIG args...` as root, killed after 60 s (a start
/// that should have failed but did not ends there too).
fn netsend_bounded(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.args(["60", netsend_bin()])
        .arg("--config")
        .arg(config)
        .args(args);
    run_with_stdin(cmd, None)
}

/// Runs `args` as `user`.
fn run_as(user: &str, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", user, "--"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A root-only file standing for `/etc/shadow`: (path, content).
fn secret_file(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let text = format!("root:$y$SECRET-HASH-{name}:19000:0:99999:7:::\n");
    std::fs::write(&path, &text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, text)
}

/// Owner uid and mode of `path` (not following a link).
fn owner_mode(path: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.mode() & 0o7777)
}

#[test]
fn root_start_up_trusts_no_link_or_directory_the_service_user_controls() {
    if !require(
        is_root() && have("useradd") && have("runuser") && have("timeout"),
        "root, useradd, runuser and timeout (two real accounts)",
    ) {
        return;
    }
    let _accounts = TestUsers::create(&["nsdsvc", "nsdother"], None);
    let outside = tempfile::tempdir().unwrap();
    let (shadow, shadow_text) = secret_file(outside.path(), "shadow");
    let (target, target_text) = secret_file(outside.path(), "target");
    let mut svc = Service::start("ROOTSTART", "user = \"nsdsvc\"", "");
    let state = svc.dir.path().join("state");
    let svc_uid = owner_mode(&state).0;
    assert_ne!(svc_uid, 0, "the state directory was handed to nsdsvc");

    // The service user plants links to root's files in its state directory
    // (replacing the service's key, made at the first start for verified
    // sends).
    let sh = shadow.to_str().unwrap();
    for (link, to) in [
        ("x", sh),
        ("remote.key", sh),
        ("netsend.log", target.to_str().unwrap()),
    ] {
        run_as(
            "nsdsvc",
            &["ln", "-sf", to, state.join(link).to_str().unwrap()],
        );
    }
    // A restart as root hands the tree over again, but not through a link.
    svc.crash_and_restart();
    assert_eq!(owner_mode(&shadow), (0, 0o600), "chown followed state/x");
    assert_eq!(owner_mode(&state.join("inbox.db")).0, svc_uid);
    let out = svc.cli(&["messenger", "stop"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The daemon's log is not opened through a link either.
    let out = netsend_bounded(&svc.config, &["messenger", "start"]);
    let _ = netsend_bounded(&svc.config, &["messenger", "stop"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "started despite the log link: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("netsend.log"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), target_text);
    assert_eq!(owner_mode(&target), (0, 0o600));

    // The remote-call key is read as root: not through a link, and an error
    // never shows what the file holds.
    let config = std::fs::read_to_string(&svc.config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &svc.config,
        format!("{config}\n[remote]\nlisten = true\nport = {port}\n"),
    )
    .unwrap();
    let out = netsend_bounded(&svc.config, &["messenger", "start", "--foreground"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("remote.key"), "{err}");
    assert!(
        !err.contains("SECRET") && !err.contains("root:"),
        "the key file's content leaked: {err}"
    );
    std::fs::write(&svc.config, &config).unwrap();
    assert_eq!(std::fs::read_to_string(&shadow).unwrap(), shadow_text);

    // A state directory that belongs to another ordinary user is refused,
    // and nothing in it changes hands.
    let other = nix::unistd::User::from_name("nsdother").unwrap().unwrap();
    nix::unistd::chown(&state, Some(other.uid), Some(other.gid)).unwrap();
    let out = netsend_bounded(&svc.config, &["messenger", "start", "--foreground"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("owned by uid"), "{err}");
    assert_eq!(owner_mode(&state).0, other.uid.as_raw());
    assert_eq!(owner_mode(&state.join("inbox.db")).0, svc_uid);

    // A service user that does not exist: the error says what to do.
    nix::unistd::chown(&state, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    std::fs::write(
        &svc.config,
        config.replace("user = \"nsdsvc\"", "user = \"nsdnosuch\""),
    )
    .unwrap();
    let out = netsend_bounded(&svc.config, &["messenger", "start", "--foreground"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("useradd --system"), "{err}");
}
