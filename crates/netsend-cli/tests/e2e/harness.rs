//! Starts real `netsend` service processes on test ports and runs CLI commands
//! against them. A service is killed in `Drop`, and its log is printed when a
//! test fails, so failures show what the service saw.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How many of a failed test's last service log lines are printed.
const LOG_TAIL: usize = 80;

/// Path of the binary under test.
pub(crate) fn netsend_bin() -> &'static str {
    env!("CARGO_BIN_EXE_netsend")
}

/// Whether namespace LANs can be built here (root and iproute2); says why
/// not, or fails under `NETSEND_REQUIRE_INTEROP`.
pub(crate) fn lans_available() -> bool {
    require(
        is_root() && have("ip"),
        "root and iproute2 (network namespaces)",
    )
}

/// Whether a test that needs root (network namespaces, privileged ports) can run.
pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a program is on PATH.
pub(crate) fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Skips a test whose requirements are missing, or fails it when
/// `NETSEND_REQUIRE_INTEROP=1` (as CI sets).
pub(crate) fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("NETSEND_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("required for this test: {what}");
    }
    eprintln!("skipped: needs {what}");
    false
}

/// A running messenger service.
pub(crate) struct Service {
    child: Child,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    pub(crate) session: SocketAddr,
    log: mpsc::Receiver<String>,
    log_lines: Vec<String>,
    /// Prefix that runs commands inside a network namespace, if any.
    pub(crate) netns: Option<String>,
    /// A command the service runs under (it ends by running its arguments).
    wrapper: Vec<String>,
}

impl Service {
    /// Starts a service on loopback with OS-chosen ports and `extra` TOML appended
    /// to the generated configuration (top-level keys go before any table, so
    /// `extra_top` takes those).
    pub(crate) fn start(computer: &str, extra_top: &str, extra: &str) -> Self {
        Self::start_in(None, computer, "127.0.0.1", 0, 0, extra_top, extra)
    }

    /// Like [`Service::start`], with the service run as the last arguments of
    /// `wrapper` (a command that sets something up, then runs them).
    pub(crate) fn start_under(
        wrapper: &[&str],
        computer: &str,
        extra_top: &str,
        extra: &str,
    ) -> Self {
        let (dir, config) = write_config(computer, "127.0.0.1", 0, 0, extra_top, extra);
        Self::launch(None, wrapper, dir, config)
    }

    /// Starts a service, optionally inside a network namespace.
    pub(crate) fn start_in(
        netns: Option<&str>,
        computer: &str,
        bind: &str,
        session_port: u16,
        name_port: u16,
        extra_top: &str,
        extra: &str,
    ) -> Self {
        let (dir, config) = write_config(computer, bind, session_port, name_port, extra_top, extra);
        Self::launch(netns, &[], dir, config)
    }

    fn launch(
        netns: Option<&str>,
        wrapper: &[&str],
        dir: tempfile::TempDir,
        config: PathBuf,
    ) -> Self {
        let wrapper: Vec<String> = wrapper.iter().map(|w| (*w).to_owned()).collect();
        let (child, log) = spawn(netns, &wrapper, &config);
        let mut service = Self {
            child,
            dir,
            config,
            session: "0.0.0.0:0".parse().unwrap(),
            log,
            log_lines: Vec::new(),
            netns: netns.map(String::from),
            wrapper,
        };
        service.wait_ready();
        service
    }

    /// The service's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the "ready" line and records the session address.
    fn wait_ready(&mut self) {
        loop {
            match self.log.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    self.log_lines.push(line.clone());
                    if let Some(rest) = line.strip_prefix("ready ") {
                        let session = rest
                            .split_whitespace()
                            .find_map(|kv| kv.strip_prefix("session="))
                            .and_then(|v| v.split(',').next())
                            .unwrap();
                        self.session = session.parse().unwrap();
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    self.drain_log();
                    panic!("service did not start:\n{}", self.log_lines.join("\n"));
                }
            }
        }
    }

    /// Kills the service with SIGKILL (a crash), then starts it again on the
    /// same configuration and state.
    pub(crate) fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain_log();
        let (child, log) = spawn(self.netns.as_deref(), &self.wrapper, &self.config);
        self.child = child;
        self.log = log;
        self.wait_ready();
    }

    fn drain_log(&mut self) {
        while let Ok(line) = self.log.recv_timeout(Duration::from_millis(100)) {
            self.log_lines.push(line);
        }
    }

    /// The service's log so far (stdout and stderr lines).
    pub(crate) fn log_text(&mut self) -> String {
        self.drain_log();
        self.log_lines.join("\n")
    }

    /// Runs `netsend --config <ours> args...` (inside our namespace if any).
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, None)
    }

    /// Runs `netsend` as the unprivileged `user` (with `runuser`).
    pub(crate) fn cli_as(&self, user: &str, args: &[&str]) -> Output {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "runuser"]);
                c
            }
            None => Command::new("runuser"),
        };
        cmd.args(["-u", user, "--", netsend_bin()]);
        cmd.arg("--config").arg(&self.config).args(args);
        run_with_stdin(cmd, None)
    }

    /// Like [`Service::cli`] with bytes on standard input.
    pub(crate) fn cli_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, netsend_bin()]);
                c
            }
            None => Command::new(netsend_bin()),
        };
        cmd.arg("--config").arg(&self.config).args(args);
        run_with_stdin(cmd, stdin)
    }

    /// The inbox as JSON values (as root: every message).
    pub(crate) fn inbox(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["inbox", "--all", "--json"]);
        assert!(
            out.status.success(),
            "inbox failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits (bounded) until the inbox holds at least `n` messages.
    pub(crate) fn wait_inbox(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..100 {
            let inbox = self.inbox();
            if inbox.len() >= n {
                return inbox;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.inbox()
    }

    /// Stops the service the way a user does, and waits for the process.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let out = self.cli(&["messenger", "stop"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.child.wait().unwrap()
    }
}

/// Writes a service configuration (see [`Service::start_in`]) into a new
/// temporary directory.
fn write_config(
    computer: &str,
    bind: &str,
    session_port: u16,
    name_port: u16,
    extra_top: &str,
    extra: &str,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    // Reachable by an unprivileged service user (privilege-drop tests).
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = dir.path().join("netsend.toml");
    let workgroup_line = if extra_top.contains("workgroup =") {
        ""
    } else {
        "workgroup = \"TESTGROUP\"\n"
    };
    let user_line = if extra_top.contains("user =") {
        ""
    } else {
        "user = \"\"\n"
    };
    // A test that writes its own utmp means it, even where logind runs.
    let sessions_line = if extra_top.contains("utmp_path =") && !extra_top.contains("sessions =") {
        "sessions = \"utmp\"\n"
    } else {
        ""
    };
    // Tests must not write to the terminals of whoever runs them (utmp is
    // the machine's own unless a test gives one): terminal output is on
    // only where a test asks for it with a [display] table.
    let display = if extra.contains("[display]") {
        ""
    } else {
        "[display]\nterminals = false\n"
    };
    // Broadcasts need the real datagram port on a namespace LAN.
    let datagram_port = if name_port == 137 { 138 } else { 0 };
    let state = dir.path().join("state");
    let control = dir.path().join("control.sock");
    std::fs::write(
            &config,
            format!(
                "computer_name = \"{computer}\"\n{workgroup_line}state_dir = \"{}\"\n\
                 control_socket = \"{}\"\n{user_line}{sessions_line}{extra_top}\n[network]\nbind = [\"{bind}\"]\n\
                 name_port = {name_port}\ndatagram_port = {datagram_port}\nsession_port = {session_port}\n{extra}\n{display}",
                state.display(),
                control.display()
            ),
        )
        .unwrap();
    (dir, config)
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            self.drain_log();
            // The tail only: a test that stored thousands of messages would
            // otherwise bury its own panic message under their log lines.
            let skipped = self.log_lines.len().saturating_sub(LOG_TAIL);
            eprintln!(
                "--- service log ({}), last {} of {} lines ---\n{}",
                self.config.display(),
                self.log_lines.len() - skipped,
                self.log_lines.len(),
                self.log_lines[skipped..].join("\n")
            );
        }
    }
}

/// Starts `netsend messenger start --foreground` and forwards its output lines.
fn spawn(
    netns: Option<&str>,
    wrapper: &[String],
    config: &Path,
) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = match (netns, wrapper.split_first()) {
        (Some(ns), _) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns])
                .args(wrapper)
                .arg(netsend_bin());
            c
        }
        (None, Some((program, args))) => {
            let mut c = Command::new(program);
            c.args(args).arg(netsend_bin());
            c
        }
        (None, None) => Command::new(netsend_bin()),
    };
    let mut child = cmd
        .arg("--config")
        .arg(config)
        .args(["messenger", "start", "--foreground"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = forward_lines(&mut child);
    (child, rx)
}

/// The lines a child started with piped stdout and stderr writes on either.
pub(crate) fn forward_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    rx
}

/// Runs a command with optional stdin and returns its output.
pub(crate) fn run_with_stdin(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().unwrap();
        s.write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Text of a command's stderr.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Text of a command's stdout.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The id `netsend send` printed for `netsend status ID`.
pub(crate) fn receipt_id(send: &Output) -> String {
    let said = stdout(send);
    said.split("netsend status ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no receipt id: {said}"))
        .to_owned()
}

/// Writes a file, creating parents.
pub(crate) fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A test LAN: one namespace holding a bridge and one namespace per host, each
/// with a veth on the bridge and an address from 192.0.2.0/24. Nothing is added
/// to the root namespace. Everything is torn down in `Drop`, also on failure.
pub(crate) struct Lan {
    prefix: String,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A veth pair from bridge `br{bridge}` in namespace `br_ns` (end `port`) to
/// namespace `ns` (end `dev`), the bridge end enslaved and up.
fn plug(br_ns: &str, bridge: usize, port: &str, dev: &str, ns: &str) {
    ip(&[
        "-n", br_ns, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns,
    ]);
    ip(&[
        "-n",
        br_ns,
        "link",
        "set",
        port,
        "master",
        &format!("br{bridge}"),
        "up",
    ]);
}

impl Lan {
    /// Builds the LAN; `hosts` are (short name, IPv4 address in 192.0.2.0/24).
    pub(crate) fn new(tag: &str, hosts: &[(&str, &str)]) -> Self {
        let mut lan = Self::bridges(tag, 1);
        for (i, (name, addr)) in hosts.iter().enumerate() {
            lan.attach(0, i, name, &format!("{addr}/24"), "192.0.2.255", None);
        }
        lan
    }

    /// Two subnets joined by a router host `rt`: 192.0.2.0/25 (router .1) with
    /// `first` and 192.0.2.128/25 (router .129) with `second`. Broadcasts stay
    /// in their subnet; unicast is routed.
    pub(crate) fn routed(tag: &str, first: &[(&str, &str)], second: &[(&str, &str)]) -> Self {
        let mut lan = Self::bridges(tag, 2);
        let segments = [
            (first, "/25", "192.0.2.127", "192.0.2.1"),
            (second, "/25", "192.0.2.255", "192.0.2.129"),
        ];
        let rt = lan.ns("rt");
        ip(&["netns", "add", &rt]);
        lan.hosts.push(rt.clone());
        ip(&["-n", &rt, "link", "set", "lo", "up"]);
        let br = lan.hosts[0].clone();
        for (seg, (hosts, prefix, bcast, gw)) in segments.iter().enumerate() {
            let (port, dev) = (format!("rt{seg}"), format!("eth{seg}"));
            plug(&br, seg, &port, &dev, &rt);
            ip(&[
                "-n",
                &rt,
                "addr",
                "add",
                &format!("{gw}{prefix}"),
                "broadcast",
                bcast,
                "dev",
                &dev,
            ]);
            ip(&["-n", &rt, "link", "set", &dev, "up"]);
            for (i, (name, addr)) in hosts.iter().enumerate() {
                lan.attach(
                    seg,
                    seg * 100 + i,
                    name,
                    &format!("{addr}{prefix}"),
                    bcast,
                    Some(gw),
                );
            }
        }
        ip(&[
            "netns",
            "exec",
            &rt,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        lan
    }

    /// The bridge namespace with `count` bridges (br0, br1, ...) and no hosts
    /// yet (add them with [`Lan::attach`] and [`Lan::leg`]).
    pub(crate) fn bridges(tag: &str, count: usize) -> Self {
        let prefix = format!("nst{}{tag}", std::process::id() % 100_000);
        let mut lan = Self {
            prefix: prefix.clone(),
            hosts: Vec::new(),
        };
        let br = format!("{prefix}br");
        ip(&["netns", "add", &br]);
        lan.hosts.push(br.clone());
        ip(&["-n", &br, "link", "set", "lo", "up"]);
        for b in 0..count {
            let dev = format!("br{b}");
            ip(&["-n", &br, "link", "add", &dev, "type", "bridge"]);
            ip(&[
                "-n",
                &br,
                "link",
                "set",
                &dev,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ]);
            ip(&["-n", &br, "link", "set", &dev, "up"]);
        }
        lan
    }

    /// Adds host `name` with address `cidr` on bridge `bridge` (its `eth0`,
    /// bridge port `port{index}`), default route via `gateway` if given.
    pub(crate) fn attach(
        &mut self,
        bridge: usize,
        index: usize,
        name: &str,
        cidr: &str,
        broadcast: &str,
        gateway: Option<&str>,
    ) {
        let ns = self.ns(name);
        ip(&["netns", "add", &ns]);
        self.hosts.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        self.leg(bridge, index, name, "eth0", cidr, broadcast);
        if let Some(gw) = gateway {
            ip(&["-n", &ns, "route", "add", "default", "via", gw]);
        }
    }

    /// Gives existing host `name` another interface `dev` with `cidr` on
    /// bridge `bridge` (bridge port `port{index}`).
    pub(crate) fn leg(
        &mut self,
        bridge: usize,
        index: usize,
        name: &str,
        dev: &str,
        cidr: &str,
        broadcast: &str,
    ) {
        assert!(
            ["192.0.2.", "198.51.100.", "203.0.113."]
                .iter()
                .any(|net| cidr.starts_with(net)),
            "test hosts use the documentation ranges (RFC 5737) only"
        );
        let br = self.hosts[0].clone();
        let ns = self.ns(name);
        plug(&br, bridge, &format!("port{index}"), dev, &ns);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            cidr,
            "broadcast",
            broadcast,
            "dev",
            dev,
        ]);
        ip(&["-n", &ns, "link", "set", dev, "up"]);
    }

    /// The namespace of host `name`.
    pub(crate) fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs a command inside host `name`'s namespace.
    pub(crate) fn exec(&self, name: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(name)]).args(args);
        run_with_stdin(cmd, stdin)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.hosts {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for ns in self.hosts.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Real Unix accounts (and one group) created for a test with `useradd`, and
/// removed in `Drop`. Needs root.
pub(crate) struct TestUsers {
    users: Vec<String>,
    group: Option<String>,
}

impl TestUsers {
    /// Creates `users` (no home, no login shell) and, if given, `group` with
    /// `members` of them. Names left over from an aborted run are replaced.
    pub(crate) fn create(users: &[&str], group: Option<(&str, &[&str])>) -> Self {
        let created = Self {
            users: users.iter().map(|u| (*u).to_owned()).collect(),
            group: group.map(|(g, _)| g.to_owned()),
        };
        created.remove();
        if let Some(g) = &created.group {
            run_ok(Command::new("groupadd").arg(g));
        }
        for u in users {
            let mut cmd = Command::new("useradd");
            cmd.args(["--no-create-home", "--shell", "/usr/sbin/nologin"]);
            if let Some((g, members)) = group {
                if members.contains(u) {
                    cmd.args(["--groups", g]);
                }
            }
            run_ok(cmd.arg(u));
        }
        created
    }

    fn remove(&self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).output();
        }
        if let Some(g) = &self.group {
            let _ = Command::new("groupdel").arg(g).output();
        }
    }
}

impl Drop for TestUsers {
    fn drop(&mut self) {
        self.remove();
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run account tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
