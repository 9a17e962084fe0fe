//! libnetapi32 as its users call it, against a running service: C programs
//! built with gcc against `lmmsg.h` and `lmalert.h` (the latter raising alerts
//! on one namespace host for the admin's alias on another), Python's ctypes,
//! and the C# sample from Microsoft's NetMessageBufferSend reference under
//! mono.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::harness::{have, is_root, lans_available, require, stderr, stdout, Lan, Service};

/// The test programs in `tests/e2e/netapi/`.
fn client_source(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/netapi")
        .join(file)
}

/// `libnetapi32.so`, built once into this test's target directory: a cdylib
/// is not built for a dependency, so the test asks cargo for it.
pub(crate) fn library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        // The test binary is TARGET/PROFILE/deps/e2e-HASH.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_owned();
        let target_dir = profile_dir.parent().unwrap();
        let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
            "debug" => "dev",
            other => other,
        };
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "netsend-netapi",
                "--profile",
                profile,
            ])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"))
            .env("CARGO_TARGET_DIR", target_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "cargo build: {}", stderr(&out));
        let library = profile_dir.join("libnetapi32.so");
        assert!(library.exists(), "{} was not built", library.display());
        library
    })
}

fn control_socket(svc: &Service) -> PathBuf {
    svc.dir.path().join("control.sock")
}

/// Runs a program with `libnetapi32.so`'s directory on `LD_LIBRARY_PATH`.
fn run(mut cmd: Command) -> Output {
    cmd.env("LD_LIBRARY_PATH", library().parent().unwrap())
        .output()
        .unwrap()
}

/// Asserts a program succeeded, showing what it printed.
fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// Compiles the C test program `source` with gcc against the headers and
/// `libnetapi32.so`, into `dir`.
fn compile_c(source: &str, dir: &Path) -> PathBuf {
    let exe = dir.join(source.trim_end_matches(".c"));
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../netsend-netapi/include");
    let out = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(client_source(source))
        .arg("-I")
        .arg(&include)
        .arg("-L")
        .arg(library().parent().unwrap())
        .arg("-lnetapi32")
        .output()
        .unwrap();
    assert_success("gcc", &out);
    exe
}

#[test]
fn c_program_linked_against_the_library() {
    if !require(have("gcc"), "gcc") {
        return;
    }
    let svc = Service::start("NAPIC", "", "");
    let build = tempfile::tempdir().unwrap();
    let exe = compile_c("client.c", build.path());

    // The socket path from the configuration file, as installed programs find it.
    let mut cmd = Command::new(&exe);
    cmd.args(["up", "napic"]).env("NETSEND_CONFIG", &svc.config);
    let out = run(cmd);
    assert_success("the C program", &out);
    assert!(stdout(&out).contains("alias CDESK"), "{}", stdout(&out));

    let inbox = svc.wait_inbox(3);
    let texts: Vec<(&str, &str, &str)> = inbox
        .iter()
        .map(|m| {
            (
                m["to"].as_str().unwrap(),
                m["from"].as_str().unwrap(),
                m["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            ("NAPIC", "root", "Hello from C: Grüße, € and 😀"),
            ("NAPIC", "CPROG", r"second, via \\computer, from CPROG"),
            ("CDESK", "root", "to the new alias"),
        ]
    );
    // CDESK was deleted again.
    assert!(!stdout(&svc.cli(&["name"])).contains("CDESK"));

    // The service is not running: nothing listens on the socket.
    let mut cmd = Command::new(&exe);
    cmd.arg("down")
        .env("NETSEND_CONTROL_SOCKET", svc.dir.path().join("absent.sock"));
    assert_success("the C program without a service", &run(cmd));

    // Something else answers on the socket: an error code, not a crash.
    let garbled = svc.dir.path().join("garbled.sock");
    let listener = UnixListener::bind(&garbled).unwrap();
    let impostor = std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut request = String::new();
            BufReader::new(&stream).read_line(&mut request).unwrap();
            stream
                .write_all(b"{\"result\":\"no such answer\"}\n")
                .unwrap();
        }
    });
    let mut cmd = Command::new(&exe);
    cmd.arg("garbled").env("NETSEND_CONTROL_SOCKET", &garbled);
    assert_success("the C program with a garbled answer", &run(cmd));
    impostor.join().unwrap();
}

#[test]
fn python_ctypes() {
    if !require(Path::new("/usr/bin/python3").exists(), "/usr/bin/python3") {
        return;
    }
    let svc = Service::start("NAPIPY", "", "");
    let text = "Python über ctypes: naïve café, 𝄞 and 😀\nsecond line";
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(client_source("client.py"))
        .arg(library())
        .args(["napipy", text])
        .env("NETSEND_CONTROL_SOCKET", control_socket(&svc));
    let out = run(cmd);
    assert_success("the Python client", &out);
    assert!(stdout(&out).contains("PYDESK"), "{}", stdout(&out));
    let inbox = svc.wait_inbox(1);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["to"], "NAPIPY");
    assert_eq!(inbox[0]["from"], "PYTHON");
    assert_eq!(inbox[0]["text"], text);

    // The service knows callers by their credentials: an ordinary user may
    // not delete root's alias; root may.
    let delete = |user: Option<&str>| {
        let mut cmd = match user {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--", "/usr/bin/python3"]);
                cmd
            }
            None => Command::new("/usr/bin/python3"),
        };
        cmd.arg(client_source("client.py"))
            .arg(library())
            .args(["del", "pydesk"])
            .env("NETSEND_CONTROL_SOCKET", control_socket(&svc));
        let out = run(cmd);
        assert_success("NetMessageNameDel from Python", &out);
        stdout(&out).trim().to_owned()
    };
    if require(have("runuser") && is_root(), "root and runuser") {
        assert_eq!(delete(Some("nobody")), "5");
    }
    assert_eq!(delete(None), "0");
    assert!(!stdout(&svc.cli(&["name"])).contains("PYDESK"));
}

#[test]
fn csharp_sample_under_mono() {
    if !require(
        have("mcs") && have("mono"),
        "mcs and mono (mono-mcs, mono-runtime)",
    ) {
        return;
    }
    let svc = Service::start("NAPICS", "", "");
    let build = tempfile::tempdir().unwrap();
    let exe = build.path().join("NetSend.exe");
    let out = Command::new("mcs")
        .arg(format!("-out:{}", exe.display()))
        .arg(client_source("NetSend.cs"))
        .output()
        .unwrap();
    assert_success("mcs", &out);
    std::fs::write(
        build.path().join("NetSend.exe.config"),
        format!(
            "<configuration>\n  <dllmap dll=\"Netapi32.dll\" target=\"{}\"/>\n</configuration>\n",
            library().display()
        ),
    )
    .unwrap();
    let mono = |msgname: &str, text: &str| {
        let mut cmd = Command::new("mono");
        cmd.arg(&exe)
            .args([msgname, text])
            .env("NETSEND_CONTROL_SOCKET", control_socket(&svc));
        let out = run(cmd);
        let printed = stdout(&out);
        printed
            .trim()
            .strip_prefix("NetMessageBufferSend returned ")
            .unwrap_or_else(|| panic!("mono printed {printed:?}, stderr {}", stderr(&out)))
            .parse::<u32>()
            .unwrap()
    };
    let text = "C# from mono: Grüße, € and 😀";
    assert_eq!(mono("napics", text), 0);
    assert_eq!(mono("NOSUCHNAME", text), 2273);
    assert_eq!(mono("ABCDEFGHIJKLMNOP", text), 87);
    assert_eq!(mono("-", text), 87);
    let inbox = svc.wait_inbox(1);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["to"], "NAPICS");
    assert_eq!(inbox[0]["text"], text);
}

/// Runs the alert program `exe` with `args` inside namespace `ns` (or here),
/// against the service configured in `config`, as `user` (or root).
fn run_alert(
    exe: &Path,
    ns: Option<&str>,
    user: Option<&str>,
    config: &Path,
    args: &[&str],
) -> Output {
    let mut cmd = Command::new("env");
    if let Some(ns) = ns {
        cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "env"]);
    }
    if let Some(user) = user {
        cmd.args(["runuser", "-u", user, "--", "env"]);
    }
    cmd.arg(format!(
        "LD_LIBRARY_PATH={}",
        library().parent().unwrap().display()
    ))
    .arg(format!("NETSEND_CONFIG={}", config.display()))
    .arg(exe)
    .args(args);
    cmd.output().unwrap()
}

#[test]
fn c_program_raises_alerts_for_the_admins_alias_on_another_host() {
    if !lans_available() || !require(have("gcc"), "gcc") {
        return;
    }
    let lan = Lan::new("na", &[("a", "192.0.2.91"), ("b", "192.0.2.92")]);
    let admin = Service::start_in(Some(&lan.ns("b")), "ADMINB", "192.0.2.92", 139, 137, "", "");
    let out = admin.cli(&["name", "OPS", "/ADD"]);
    assert_success("adding the admin's alias OPS", &out);
    let host = Service::start_in(
        Some(&lan.ns("a")),
        "ALERTA",
        "192.0.2.91",
        139,
        137,
        "",
        "[alerter]\nnames = [\"OPS\"]\ngather_secs = 0\n",
    );
    let build = tempfile::tempdir().unwrap();
    let exe = compile_c("alert.c", build.path());

    let out = run_alert(&exe, Some(&lan.ns("a")), None, &host.config, &["raise"]);
    assert_success("the alert program", &out);
    let inbox = admin.wait_inbox(2);
    let texts: Vec<&str> = inbox
        .iter()
        .filter(|m| m["to"] == "OPS")
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 2, "{inbox:?}");
    // NT's text 3000 with its merge strings, from the service it named.
    let disk = texts
        .iter()
        .find(|t| t.contains("DiskWatch"))
        .unwrap_or_else(|| panic!("no DiskWatch alert: {texts:?}"));
    assert!(
        disk.contains(
            "Drive /var is nearly full. 1048576 bytes are available.\n\
             Please warn users and delete unneeded files."
        ),
        "{disk}"
    );
    assert!(disk.contains("ADMIN") && disk.contains("ALERTA"), "{disk}");
    // NetAlertRaise's free text, as its string.
    let backup = texts
        .iter()
        .find(|t| t.contains("Backup"))
        .unwrap_or_else(|| panic!("no Backup alert: {texts:?}"));
    assert!(
        backup.contains("Nightly backup failed: tape full (Grüße, 😀)"),
        "{backup}"
    );

    // A user outside root and broadcast_group may not raise alerts.
    if require(have("runuser") && is_root(), "root and runuser") {
        std::fs::set_permissions(
            build.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let ns = lan.ns("a");
        let out = run_alert(
            &exe,
            Some(&ns),
            Some("nobody"),
            &host.config,
            &["errors", "5"],
        );
        assert_success("the alert program as nobody", &out);
        assert!(
            stdout(&out).contains("ok well-formed NetAlertRaise: 5\n"),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn c_program_alert_errors() {
    if !require(have("gcc"), "gcc") {
        return;
    }
    let build = tempfile::tempdir().unwrap();
    let exe = compile_c("alert.c", build.path());
    // No service: every malformed call is refused all the same, and a
    // well-formed one finds no Alerter, as on Windows.
    let empty = build.path().join("netsend.toml");
    std::fs::write(
        &empty,
        format!(
            "control_socket = \"{}\"\n",
            build.path().join("absent.sock").display()
        ),
    )
    .unwrap();
    let out = run_alert(&exe, None, None, &empty, &["errors", "2"]);
    assert_success("the alert program without a service", &out);
    assert!(
        stdout(&out).contains("ok well-formed NetAlertRaise: 2\n"),
        "{}",
        stdout(&out)
    );
    // A service with no alert names: its Alerter is off.
    let svc = Service::start("NAPIAL", "", "");
    let out = run_alert(&exe, None, None, &svc.config, &["errors", "2184"]);
    assert_success("the alert program with the Alerter off", &out);
    assert!(
        stdout(&out).contains("ok well-formed NetAlertRaiseEx: 2184\n"),
        "{}",
        stdout(&out)
    );
    assert!(svc.inbox().is_empty());
}
