//! The Debian package as a sysadmin meets it: `scripts/build-deb.sh` builds
//! it (lintian clean), `apt-get install ./netsend_….deb` puts it into a fresh
//! Debian 12 root (debootstrap minbase, cached under `target/debootstrap/`),
//! every file is checked for owner and mode, the service runs from the unit's
//! `ExecStart=` line with the unit's identity and capabilities on a namespace
//! LAN, exchanges messages with a peer, and `apt-get purge` leaves nothing of
//! ours but the system user.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::{
    forward_lines, have, is_root, netsend_bin, require, stderr, stdout, Lan, Service,
};

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// The packages `scripts/build-deb.sh` builds, besides `netsend`.
const LIBRARIES: [&str; 2] = ["libnetapi32-0", "libnetapi32-dev"];

/// The root is thrown away: dpkg need not fsync every file it unpacks.
const UNSAFE_IO: &str = "-oDpkg::Options::=--force-unsafe-io";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/debootstrap`, beside the binary under test's profile directory.
fn cache() -> PathBuf {
    Path::new(netsend_bin())
        .ancestors()
        .nth(2)
        .unwrap()
        .join("debootstrap")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// A minbase root of Debian 12, made once and kept (the test works on an
/// overlay of it, so it stays fresh).
fn base_root() -> PathBuf {
    let dir = cache();
    let root = dir.join(format!("{SUITE}-minbase"));
    let ready = dir.join(format!("{SUITE}-minbase.ready"));
    if ready.exists() {
        return root;
    }
    let partial = dir.join(format!("{SUITE}-minbase.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&dir).unwrap();
    run(Command::new("debootstrap")
        .args(["--variant=minbase", SUITE])
        .arg(&partial)
        .arg(MIRROR));
    std::fs::rename(&partial, &root).unwrap();
    std::fs::write(&ready, "").unwrap();
    root
}

/// A throwaway root: an overlay over the cached base with `/proc` and apt's
/// download cache (kept in `target/debootstrap/archives`) mounted, all
/// unmounted in `Drop`.
struct Root {
    path: PathBuf,
    mounts: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Self {
        let base = base_root();
        let dir = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(cache())
            .unwrap();
        let path = dir.path().join("root");
        for d in ["upper", "work", "root"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let mut root = Self {
            path: path.clone(),
            mounts: Vec::new(),
            _dir: dir,
        };
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            root._dir.path().join("upper").display(),
            root._dir.path().join("work").display()
        );
        run(Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&path));
        root.mounts.push(path.clone());
        run(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(path.join("proc")));
        root.mounts.push(path.join("proc"));
        let archives = cache().join("archives");
        std::fs::create_dir_all(archives.join("partial")).unwrap();
        run(Command::new("mount")
            .arg("--bind")
            .arg(&archives)
            .arg(path.join("var/cache/apt/archives")));
        root.mounts.push(path.join("var/cache/apt/archives"));
        root
    }

    /// `path` inside the root.
    fn at(&self, path: &str) -> PathBuf {
        self.path.join(path.trim_start_matches('/'))
    }

    /// A command run inside the root (as root).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("chroot");
        cmd.arg(&self.path)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        run(&mut self.command(args))
    }

    /// The files changed since the base (the overlay's upper layer), relative.
    fn changed(&self) -> Vec<String> {
        let upper = self._dir.path().join("upper");
        let mut found = Vec::new();
        let mut todo = vec![upper.clone()];
        while let Some(dir) = todo.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() && !path.is_symlink() {
                    todo.push(path.clone());
                }
                found.push(
                    path.strip_prefix(&upper)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
        found
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for mount in self.mounts.iter().rev() {
            let out = Command::new("umount").arg(mount).output();
            if !out.is_ok_and(|o| o.status.success()) {
                let _ = Command::new("umount").arg("-l").arg(mount).output();
            }
        }
    }
}

/// Name → id from the root's `/etc/passwd` or `/etc/group`.
fn ids(root: &Root, file: &str) -> BTreeMap<u32, String> {
    std::fs::read_to_string(root.at(file))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, (*f.first()?).to_owned()))
        })
        .collect()
}

/// `path`'s (type and permission bits, owner, group) inside the root.
fn stat(root: &Root, path: &str) -> (String, u32, String, String) {
    let meta = std::fs::symlink_metadata(root.at(path))
        .unwrap_or_else(|e| panic!("{path} not installed: {e}"));
    let kind = if meta.file_type().is_symlink() {
        "link"
    } else if meta.is_dir() {
        "dir"
    } else {
        "file"
    };
    let users = ids(root, "/etc/passwd");
    let groups = ids(root, "/etc/group");
    (
        kind.to_owned(),
        meta.permissions().mode() & 0o7777,
        users.get(&meta.uid()).cloned().unwrap_or_default(),
        groups.get(&meta.gid()).cloned().unwrap_or_default(),
    )
}

/// The value of `Key=` in the unit (the first one).
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

/// The shell command that starts the unit's `ExecStart=` as systemd would:
/// `User=`, `Group=`, `SupplementaryGroups=`, the capability sets,
/// `NoNewPrivileges=`, `SecureBits=` and `UMask=` of the unit, with setpriv.
fn unit_start_command(unit: &str) -> String {
    let value = |key| unit_value(unit, key).unwrap_or_else(|| panic!("no {key}= in the unit"));
    let caps = |key| {
        value(key)
            .split_whitespace()
            .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut setpriv = vec![
        format!("--reuid={}", value("User")),
        format!("--regid={}", value("Group")),
        format!(
            "--groups={}",
            value("SupplementaryGroups").replace(' ', ",")
        ),
        format!("--bounding-set=-all,{}", caps("CapabilityBoundingSet")),
        format!("--inh-caps=-all,{}", caps("AmbientCapabilities")),
        format!("--ambient-caps={}", caps("AmbientCapabilities")),
    ];
    if value("NoNewPrivileges") == "yes" {
        setpriv.push("--no-new-privs".into());
    }
    if value("SecureBits") == "noroot-locked" {
        setpriv.push("--securebits=+noroot,+noroot_locked".into());
    }
    format!(
        "umask {} && exec setpriv {} {}",
        value("UMask"),
        setpriv.join(" "),
        value("ExecStart")
    )
}

/// The service started from the installed unit inside the root, on host `pkg`
/// of the LAN, with the computer name DEBPKG (its hostname there).
fn start_service(root: &Root, lan: &Lan, unit: &str) -> (Child, mpsc::Receiver<String>) {
    // systemd makes RuntimeDirectory= before ExecStart=, owned by User=.
    assert_eq!(unit_value(unit, "RuntimeDirectory"), Some("netsend"));
    let run_dir = root.at("/run/netsend");
    std::fs::create_dir_all(&run_dir).unwrap();
    root.run(&["chown", "netsend:netsend", "/run/netsend"]);
    let mode = u32::from_str_radix(unit_value(unit, "RuntimeDirectoryMode").unwrap(), 8).unwrap();
    std::fs::set_permissions(&run_dir, PermissionsExt::from_mode(mode)).unwrap();
    let inner = unit_start_command(unit);
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lan.ns("pkg"),
            "unshare",
            "--uts",
            "sh",
            "-c",
        ])
        .arg(r#"hostname debpkg && exec chroot "$0" sh -c "$1""#)
        .arg(&root.path)
        .arg(&inner)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = forward_lines(&mut child);
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("ready ") => return (child, lines),
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{inner} did not start:\n{}", seen.join("\n"));
            }
        }
    }
}

/// Waits (bounded) for the root's inbox to hold a message with `text`.
fn wait_for_text(root: &Root, text: &str) -> serde_json::Value {
    for _ in 0..100 {
        let out = root.run(&["netsend", "inbox", "--json"]);
        let inbox: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(m) = inbox.into_iter().find(|m| m["text"] == text) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{text:?} never reached the packaged service's inbox");
}

/// What the three packages install, with type, mode, owner and group.
fn expected_files(multiarch: &str) -> Vec<(String, &'static str, u32, &'static str)> {
    let lib = format!("/usr/lib/{multiarch}");
    let mut files = vec![
        ("/usr/bin/netsend".to_owned(), "file", 0o755, "root"),
        (
            "/lib/systemd/system/netsend.service".into(),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/lib/sysusers.d/netsend.conf".into(),
            "file",
            0o644,
            "root",
        ),
        ("/etc/netsend/netsend.toml".into(), "file", 0o644, "root"),
        (
            "/etc/xdg/autostart/netsend-agent.desktop".into(),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/share/man/man1/netsend.1.gz".into(),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/share/man/man1/netsend-messenger-start.1.gz".into(),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/share/man/man5/netsend.toml.5.gz".into(),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/share/bash-completion/completions/netsend".into(),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/share/zsh/vendor-completions/_netsend".into(),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/share/fish/vendor_completions.d/netsend.fish".into(),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/share/doc/netsend/copyright".into(),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/share/doc/netsend/README.md.gz".into(),
            "file",
            0o644,
            "root",
        ),
        // The state directory is the service user's alone.
        ("/var/lib/netsend".into(), "dir", 0o700, "netsend"),
        // Enabled by deb-systemd-helper.
        (
            "/etc/systemd/system/multi-user.target.wants/netsend.service".into(),
            "link",
            0o777,
            "root",
        ),
        (format!("{lib}/libnetapi32.so.0"), "file", 0o644, "root"),
        (format!("{lib}/libnetapi32.so"), "link", 0o777, "root"),
        (
            format!("{lib}/pkgconfig/netapi32.pc"),
            "file",
            0o644,
            "root",
        ),
        (
            "/usr/share/doc/libnetapi32-0/copyright".into(),
            "file",
            0o644,
            "root",
        ),
    ];
    for header in std::fs::read_dir(repo().join("crates/netsend-netapi/include")).unwrap() {
        let name = header.unwrap().file_name().to_string_lossy().into_owned();
        files.push((
            format!("/usr/include/netapi32/{name}"),
            "file",
            0o644,
            "root",
        ));
    }
    files
}

#[test]
fn deb_installs_runs_and_purges_in_a_fresh_debian_root() {
    let tools = [
        "debootstrap",
        "dpkg-buildpackage",
        "dh",
        "lintian",
        "ip",
        "unshare",
    ];
    if !require(is_root(), "root")
        || !require(
            tools.iter().all(|t| have(t)),
            "debootstrap dpkg-dev debhelper lintian iproute2 util-linux",
        )
    {
        return;
    }
    // Built and lintian-checked by the script the README gives.
    let out = run(Command::new("bash").arg(repo().join("scripts/build-deb.sh")));
    let deb = PathBuf::from(stdout(&out).lines().last().unwrap().trim());
    let out_dir = deb.parent().unwrap();
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    let version = name
        .strip_prefix("netsend_")
        .and_then(|rest| rest.split('_').next())
        .unwrap()
        .to_owned();
    let arch = stdout(&run(Command::new("dpkg").arg("--print-architecture")))
        .trim()
        .to_owned();
    let multiarch = stdout(&run(
        Command::new("dpkg-architecture").args(["-q", "DEB_HOST_MULTIARCH"])
    ))
    .trim()
    .to_owned();

    let root = Root::new();
    let mut debs = vec![format!("/tmp/{name}")];
    std::fs::copy(&deb, root.at(&debs[0])).unwrap();
    for lib in LIBRARIES {
        let file = format!("{lib}_{version}_{arch}.deb");
        std::fs::copy(out_dir.join(&file), root.at(&format!("/tmp/{file}"))).unwrap();
        debs.push(format!("/tmp/{file}"));
    }
    root.run(&["apt-get", "update", "-qq"]);
    let mut install = vec![
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        UNSAFE_IO,
    ];
    install.extend(debs.iter().map(String::as_str));
    root.run(&install);
    for deb in &debs {
        std::fs::remove_file(root.at(deb)).unwrap();
    }

    // Every file in place, with its owner and mode.
    for (path, kind, mode, owner) in expected_files(&multiarch) {
        let group = if owner == "netsend" {
            "netsend"
        } else {
            "root"
        };
        assert_eq!(
            stat(&root, &path),
            (kind.to_owned(), mode, owner.to_owned(), group.to_owned()),
            "{path}"
        );
    }
    let unit = std::fs::read_to_string(root.at("/lib/systemd/system/netsend.service")).unwrap();
    let packaged = std::fs::read_to_string(repo().join("packaging/netsend.service")).unwrap();
    assert_eq!(unit, packaged, "the unit is packaging/netsend.service");
    assert_eq!(
        std::fs::read_link(root.at(&format!("/usr/lib/{multiarch}/libnetapi32.so"))).unwrap(),
        Path::new("libnetapi32.so.0")
    );
    let conffiles = std::fs::read_to_string(root.at("/var/lib/dpkg/info/netsend.conffiles"))
        .unwrap_or_default();
    for conffile in [
        "/etc/netsend/netsend.toml",
        "/etc/xdg/autostart/netsend-agent.desktop",
    ] {
        assert!(conffiles.lines().any(|l| l == conffile), "{conffiles}");
    }
    // Nothing else of ours is writable by others, setuid or owned by another user.
    for package in std::iter::once("netsend").chain(LIBRARIES) {
        let listed = root.run(&["dpkg", "-L", package]);
        for path in stdout(&listed).lines().filter(|l| l.starts_with('/')) {
            let (kind, mode, owner, group) = stat(&root, path);
            if kind == "link" {
                continue;
            }
            assert_eq!(mode & 0o7022, 0, "{path}: mode {mode:o}");
            if path != "/var/lib/netsend" {
                assert_eq!((owner.as_str(), group.as_str()), ("root", "root"), "{path}");
            }
        }
    }
    // The system user, from sysusers.d.
    let passwd = std::fs::read_to_string(root.at("/etc/passwd")).unwrap();
    let account = passwd
        .lines()
        .find(|l| l.starts_with("netsend:"))
        .unwrap_or_else(|| panic!("no netsend user:\n{passwd}"))
        .to_owned();
    let fields: Vec<&str> = account.split(':').collect();
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid < 1000, "{account}");
    assert_eq!(&fields[5..], ["/var/lib/netsend", "/usr/sbin/nologin"]);

    // Run it as the unit does, on a LAN with a peer.
    let lan = Lan::new("pk", &[("pkg", "192.0.2.71"), ("peer", "192.0.2.72")]);
    let peer = Service::start_in(
        Some(&lan.ns("peer")),
        "PEER",
        "192.0.2.72",
        139,
        137,
        "",
        "",
    );
    let (mut service, lines) = start_service(&root, &lan, &unit);
    let status = std::fs::read_to_string(format!("/proc/{}/status", service.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == uid.to_string()),
        "{uid_line}"
    );
    for set in ["CapPrm", "CapEff", "CapAmb"] {
        let line = status.lines().find(|l| l.starts_with(set)).unwrap();
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    root.run(&["netsend", "send", "PEER", "hello from the package"]);
    let theirs = peer.wait_inbox(1);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["text"], "hello from the package");
    assert!(theirs[0]["source"]
        .as_str()
        .unwrap()
        .starts_with("192.0.2.71"));
    let out = peer.cli(&["send", "DEBPKG", "hello to the package"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours = wait_for_text(&root, "hello to the package");
    assert!(ours["source"].as_str().unwrap().starts_with("192.0.2.72"));
    assert_eq!(
        stat(&root, "/var/lib/netsend/inbox.db").2,
        "netsend",
        "the inbox belongs to the service user"
    );
    root.run(&["netsend", "messenger", "stop"]);
    let mut stopped = None;
    for _ in 0..100 {
        stopped = service.try_wait().unwrap();
        if stopped.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if stopped.is_none() {
        let _ = service.kill();
        let log: Vec<String> = lines.try_iter().collect();
        panic!("the service did not stop:\n{}", log.join("\n"));
    }
    // systemd removes RuntimeDirectory= when the service stops.
    std::fs::remove_dir_all(root.at("/run/netsend")).unwrap();
    drop(peer);

    // Purge: nothing of ours is left but the system user.
    let mut purge = vec!["apt-get", "purge", "-y", "-q", UNSAFE_IO, "netsend"];
    purge.extend(LIBRARIES);
    root.run(&purge);
    let left: Vec<String> = root
        .changed()
        .into_iter()
        .filter(|p| p.contains("netsend") || p.contains("netapi32"))
        .collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    for (path, ..) in expected_files(&multiarch) {
        assert!(
            std::fs::symlink_metadata(root.at(&path)).is_err(),
            "{path} left"
        );
    }
    let passwd = std::fs::read_to_string(root.at("/etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l == account),
        "the system user stays"
    );
}
