//! What packagers ship: the systemd unit (verified by systemd and run the way
//! it runs the service: unprivileged with only CAP_NET_BIND_SERVICE), the man
//! pages and the shell completions.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{have, is_root, netsend_bin, require, stderr, stdout};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn unit_text() -> String {
    std::fs::read_to_string(repo_file("packaging/netsend.service")).unwrap()
}

/// The arguments of `Key=/usr/bin/netsend ARGS` in the unit.
fn unit_command(key: &str) -> Vec<String> {
    let text = unit_text();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"));
    let mut words = line.split_whitespace().map(String::from);
    assert_eq!(words.next().as_deref(), Some("/usr/bin/netsend"));
    words.collect()
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    if !require(have("systemd-analyze"), "systemd-analyze (Debian: systemd)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // verify checks that the binary exists: point it at the one under test.
    let unit = dir.path().join("netsend.service");
    std::fs::write(
        &unit,
        unit_text().replace("/usr/bin/netsend", netsend_bin()),
    )
    .unwrap();
    verify_unit(&unit, "netsend.service");
}

/// `systemd-analyze verify` finds nothing to say about the unit file `unit`
/// (loaded as `name`: a template through an instance name), and its
/// exposure score stays at most 2.
pub(crate) fn verify_unit(unit: &Path, name: &str) {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(unit)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "systemd-analyze complains");
    // The hardening stays: systemd's own exposure score (0 best, 10 worst).
    // (Debian 12's systemd exits 1 from offline mode whatever the score, so
    // the score is read from its report.)
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let report = stdout(&out);
    let score: f64 = report
        .lines()
        .find_map(|l| {
            l.split(&format!("Overall exposure level for {name}: "))
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in {report}{}", stderr(&out)));
    assert!(score <= 2.0, "exposure {score}:\n{report}");
}

#[test]
fn unit_command_lines_parse_with_our_binary() {
    for key in ["ExecStart", "ExecStop"] {
        let mut args = unit_command(key);
        args.push("--help".into());
        let out = Command::new(netsend_bin()).args(&args).output().unwrap();
        assert!(out.status.success(), "{key}: {args:?}: {}", stderr(&out));
    }
    // The check would notice a flag that does not exist.
    let out = Command::new(netsend_bin())
        .args(["messenger", "start", "--foregroundd", "--help"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// The unit's way of running the service, without systemd: user nobody with
/// CAP_NET_BIND_SERVICE ambient binds a port below 1024, then holds no
/// capability at all, and receives messages.
#[test]
fn unprivileged_start_with_bind_capability_then_drops_it() {
    if !require(is_root(), "root") || !require(have("setpriv"), "setpriv (util-linux)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    nix::unistd::chown(
        dir.path(),
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .unwrap();
    nix::unistd::chown(&state, Some(65534.into()), Some(65534.into())).unwrap();
    let config = dir.path().join("netsend.toml");
    // Port 739 (unassigned, below 1024) does not collide with Samba tests on 139.
    std::fs::write(
        &config,
        format!(
            "computer_name = \"CAPTEST\"\nworkgroup = \"TESTGROUP\"\nuser = \"nobody\"\n\
             state_dir = \"{}\"\ncontrol_socket = \"{}\"\n[network]\nbind = [\"127.0.0.1\"]\n\
             name_port = 0\ndatagram_port = 0\nsession_port = 739\n",
            state.display(),
            dir.path().join("control.sock").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+net_bind_service",
            "--ambient-caps=+net_bind_service",
            netsend_bin(),
            "--config",
        ])
        .arg(&config)
        .args(unit_command("ExecStart"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    if !ready.starts_with("ready ") {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("did not start: {ready}\n{}", stderr(&out));
    }
    assert!(ready.contains("session=127.0.0.1:739"), "{ready}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        let line = status.lines().find(|l| l.starts_with(set)).unwrap();
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    assert!(status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.contains("65534")));
    let out = Command::new(netsend_bin())
        .arg("--config")
        .arg(&config)
        .args(["send", "CAPTEST", "hello", "from", "root"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = Command::new(netsend_bin())
        .arg("--config")
        .arg(&config)
        .args(["messenger", "stop"])
        .output();
    std::thread::sleep(Duration::from_millis(100));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn man_pages_cover_every_subcommand_and_render_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(netsend_bin())
        .args(["manpage", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let main_page = std::fs::read_to_string(dir.path().join("netsend.1")).unwrap();
    let subcommands = [
        "send",
        "name",
        "inbox",
        "messenger",
        "completions",
        "manpage",
    ];
    for sub in subcommands {
        assert!(
            main_page.contains(&format!("netsend\\-{sub}(1)")),
            "netsend(1) lacks {sub}"
        );
        assert!(dir.path().join(format!("netsend-{sub}.1")).exists());
    }
    for sub in [
        "messenger-start",
        "messenger-stop",
        "messenger-status",
        "inbox-read",
    ] {
        assert!(
            dir.path().join(format!("netsend-{sub}.1")).exists(),
            "{sub}"
        );
    }
    // Without --out, netsend(1) goes to stdout.
    let out = Command::new(netsend_bin()).arg("manpage").output().unwrap();
    assert_eq!(stdout(&out), main_page);
    if !require(
        have("man") && have("groff"),
        "man and groff (Debian: man-db groff-base)",
    ) {
        return;
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let page = entry.unwrap().path();
        let out = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", page.display());
        assert_eq!(stderr(&out), "", "{} renders with warnings", page.display());
        assert!(!out.stdout.is_empty());
    }
}

/// netsend.toml(5) documents every key of README's Configuration section.
#[test]
fn config_man_page_lists_every_readme_key() {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let page = std::fs::read_to_string(repo_file("packaging/netsend.toml.5")).unwrap();
    let section = readme.split("## Configuration").nth(1).unwrap();
    let block = section
        .split("```toml")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let mut keys = 0;
    for line in block.lines().map(str::trim) {
        if let Some(table) = line.strip_prefix('[') {
            let table = table.split(']').next().unwrap().trim_start_matches('[');
            assert!(
                page.contains(&format!(".SH [{table}]"))
                    || page.contains(&format!(".SH [[{table}]]")),
                "table {table}"
            );
        } else if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && !key.starts_with('#') {
                assert!(
                    page.contains(&format!(".BR {key} ")),
                    "key {key} missing from netsend.toml(5)"
                );
                keys += 1;
            }
        }
    }
    assert!(keys > 30, "only {keys} keys found in README");
}

#[test]
fn completion_scripts_load_in_their_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(netsend_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for sub in ["send", "name", "inbox", "messenger"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    // zsh and fish: the scripts parse.
    if require(have("zsh") && have("fish"), "zsh and fish") {
        for (shell, check) in [("zsh", "-n"), ("fish", "--no-execute")] {
            let dir = tempfile::tempdir().unwrap();
            let script = dir.path().join("netsend.completion");
            let out = Command::new(netsend_bin())
                .args(["completions", shell])
                .output()
                .unwrap();
            std::fs::write(&script, &out.stdout).unwrap();
            let out = Command::new(shell)
                .arg(check)
                .arg(&script)
                .output()
                .unwrap();
            assert!(out.status.success(), "{shell}: {}", stderr(&out));
        }
    }
    // bash: the script parses and registers a completion function for netsend.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source <('{}' completions bash); complete -p netsend",
            netsend_bin()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        // `_netsend`, or its wrapper that completes `send` names from the
        // browse list (`netsend view --names`).
        stdout(&out).contains("-F _netsend"),
        "{}",
        stdout(&out)
    );
    assert_eq!(stderr(&out), "");
    // And it completes: the subcommands after `netsend `.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source <('{}' completions bash); COMP_WORDS=(netsend me); COMP_CWORD=1; \
             COMP_LINE='netsend me'; COMP_POINT=10; _netsend netsend me netsend; echo \"${{COMPREPLY[@]}}\"",
            netsend_bin()
        ))
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("messenger"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}
