//! The orchestrator: a namespace LAN with netsend on one host, smbd + nmbd on
//! another and the load generator on a third; every case against both, medians
//! of `repeat` runs, and a delivery check on both receivers. The ceiling case
//! adds the no-op responder on a fifth host to the same load.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::load::Measured;
use crate::noop::Counts;

const BRIDGE_NS: &str = "nsbench-br";
/// (namespace, address) of the netsend host, the Samba host and the client.
pub(crate) const NETSEND: (&str, &str) = ("nsbench-n", "192.0.2.91");
pub(crate) const SAMBA: (&str, &str) = ("nsbench-s", "192.0.2.92");
pub(crate) const CLIENT: (&str, &str) = ("nsbench-c", "192.0.2.93");
/// The host that floods the receivers while the client measures (flood case).
const FLOODER: (&str, &str) = ("nsbench-f", "192.0.2.94");
/// The host of the no-op responder (the ceiling case).
const CEILING: (&str, &str) = ("nsbench-z", "192.0.2.95");
/// How long the flood lasts (bounded load).
const FLOOD_SECS: u64 = 8;
/// Messages the measured sender sends, quiet and under flood.
const VICTIM_COUNT: usize = 100;

pub(crate) fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The LAN, torn down (processes killed, namespaces deleted) on drop.
pub(crate) struct Lan {
    pub(crate) children: Vec<Child>,
    /// Every namespace of the LAN, the bridges' last.
    pub(crate) namespaces: Vec<&'static str>,
}

impl Lan {
    /// As root: a scratch directory (readable by the services' users) and
    /// the LAN.
    pub(crate) fn with_scratch() -> Result<(tempfile::TempDir, Self), String> {
        let dir = scratch()?;
        Ok((dir, Self::new()?))
    }

    fn new() -> Result<Self, String> {
        let lan = Self {
            children: Vec::new(),
            namespaces: vec![
                NETSEND.0, SAMBA.0, CLIENT.0, FLOODER.0, CEILING.0, BRIDGE_NS,
            ],
        };
        sh(&["ip", "netns", "add", BRIDGE_NS])?;
        sh(&[
            "ip", "-n", BRIDGE_NS, "link", "add", "br0", "type", "bridge",
        ])?;
        sh(&["ip", "-n", BRIDGE_NS, "link", "set", "br0", "up"])?;
        for (i, (ns, addr)) in [NETSEND, SAMBA, CLIENT, FLOODER, CEILING]
            .iter()
            .enumerate()
        {
            let port = format!("port{i}");
            sh(&["ip", "netns", "add", ns])?;
            sh(&[
                "ip", "-n", BRIDGE_NS, "link", "add", &port, "type", "veth", "peer", "name",
                "eth0", "netns", ns,
            ])?;
            sh(&[
                "ip", "-n", BRIDGE_NS, "link", "set", &port, "master", "br0", "up",
            ])?;
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "broadcast",
                "192.0.2.255",
                "dev",
                "eth0",
            ])?;
            sh(&["ip", "-n", ns, "link", "set", "eth0", "up"])?;
        }
        // A connection per message: widen the ports and reuse TIME_WAIT.
        for ns in [CLIENT.0, FLOODER.0] {
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_local_port_range=1024 65535",
                "net.ipv4.tcp_tw_reuse=1",
            ])?;
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            if let Ok(pids) = sh(&["ip", "netns", "pids", ns]) {
                for pid in pids.split_whitespace() {
                    let _ = sh(&["kill", "-9", pid]);
                }
            }
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

/// As root: a scratch directory readable by the services' users.
pub(crate) fn scratch() -> Result<tempfile::TempDir, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("run as root (network namespaces, ports 137-139)".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(dir)
}

fn start_samba(dir: &Path) -> Result<PathBuf, String> {
    let d = dir.join("samba");
    for sub in [
        "run", "lock", "state", "cache", "private", "log", "ncalrpc", "tmp", "inbox",
    ] {
        std::fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
    }
    use std::os::unix::fs::PermissionsExt;
    for sub in ["tmp", "inbox"] {
        std::fs::set_permissions(d.join(sub), std::fs::Permissions::from_mode(0o1777))
            .map_err(|e| e.to_string())?;
    }
    let ds = d.display();
    let conf = d.join("smb.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\n netbios name = SMBBENCH\n workgroup = BENCH\n server role = standalone server\n interfaces = eth0\n \
             bind interfaces only = yes\n smb ports = 139\n disable netbios = no\n server min protocol = NT1\n \
             message command = /bin/sh -c 'cat %s >> {ds}/inbox/msgs.log; rm %s'\n local master = no\n domain master = no\n \
             preferred master = no\n load printers = no\n printing = bsd\n printcap name = /dev/null\n disable spoolss = yes\n \
             passdb backend = tdbsam:{ds}/private/passdb.tdb\n pid directory = {ds}/run\n lock directory = {ds}/lock\n \
             state directory = {ds}/state\n cache directory = {ds}/cache\n private dir = {ds}/private\n ncalrpc dir = {ds}/ncalrpc\n \
             log file = {ds}/log/log.%m\n log level = 0\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let conf_s = conf.display().to_string();
    let status = Command::new("ip")
        .args(["netns", "exec", SAMBA.0, "smbd", "-D", "-s", &conf_s])
        .env("TMPDIR", d.join("tmp"))
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("smbd did not start (apt-get install samba)".into());
    }
    sh(&["ip", "netns", "exec", SAMBA.0, "nmbd", "-D", "-s", &conf_s])?;
    Ok(d.join("inbox/msgs.log"))
}

/// Limits of the throughput cases: anti-spam off, as smbd has none.
pub(crate) const UNLIMITED: &str = "max_connections = 1024\nmax_connections_per_source = 1024\nmessages_per_minute = 0\nsender_messages_per_minute = 0\ninbox_quota = 0\n";
/// Limits of the flood case: the defaults, with bursts big enough for the
/// measured sender's two runs.
const ANTI_SPAM: &str = "message_burst = 250\nsender_message_burst = 250\n";

/// One netsend host of the LAN: its namespace and address, and its computer name.
pub(crate) struct Host {
    pub(crate) ns: (&'static str, &'static str),
    pub(crate) computer: &'static str,
}

/// The receiver of every case.
const RECEIVER: Host = Host {
    ns: NETSEND,
    computer: "NSBENCH",
};

fn start_netsend(lan: &mut Lan, dir: &Path, limits: &str) -> Result<PathBuf, String> {
    start_host(lan, &RECEIVER, dir, limits, "")
}

/// Starts netsend on `host` with `limits` and extra top-level keys `top`.
pub(crate) fn start_host(
    lan: &mut Lan,
    host: &Host,
    dir: &Path,
    limits: &str,
    top: &str,
) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let netsend = exe.with_file_name("netsend");
    if !netsend.exists() {
        return Err(format!(
            "{} is missing: cargo build --release -p netsend-cli",
            netsend.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let config = dir.join("netsend.toml");
    std::fs::write(
        &config,
        format!(
            "computer_name = \"{2}\"\nworkgroup = \"BENCH\"\nstate_dir = \"{0}/state\"\ncontrol_socket = \"{0}/control.sock\"\n\
             user = \"\"\n{top}\n[network]\nbind = [\"{1}\"]\n[limits]\n{limits}",
            dir.display(),
            host.ns.1,
            host.computer,
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut child = Command::new("ip")
        .args(["netns", "exec", host.ns.0])
        .arg(&netsend)
        .arg("--config")
        .arg(&config)
        .args(["messenger", "start", "--foreground"])
        .env("NETSEND_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    lan.children.push(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if !line.starts_with("ready") {
        return Err(format!("netsend did not start: {line}"));
    }
    Ok(config)
}

fn in_client(args: &[&str]) -> Result<Measured, String> {
    in_ns(CLIENT.0, args)
}

/// Runs this binary's `load` or `queries` with `args` inside namespace `ns`.
pub(crate) fn in_ns(ns: &str, args: &[&str]) -> Result<Measured, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let exe = exe.display().to_string();
    let mut full = vec!["ip", "netns", "exec", ns, exe.as_str()];
    full.extend_from_slice(args);
    let out = sh(&full)?;
    serde_json::from_str(out.trim()).map_err(|e| format!("bad load output {out:?}: {e}"))
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn rss_kib(ns: &str, names: &[&str]) -> u64 {
    let pids = sh(&["ip", "netns", "pids", ns]).unwrap_or_default();
    pids.split_whitespace()
        .filter(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            names.iter().any(|n| comm.trim().starts_with(n))
        })
        .filter_map(|p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

/// The no-op responder on the ceiling host, driven through its standard
/// streams (see [`crate::noop`]); it exits when dropped.
struct Responder {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Responder {
    /// Starts `netsend-bench noop` on the ceiling host and waits until it listens.
    fn start() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", CEILING.0])
            .arg(&exe)
            .args(["noop", "--bind", CEILING.1])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("no stdio for the no-op responder".into());
        };
        let mut responder = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let line = responder.line()?;
        if !line.starts_with("ready") {
            return Err(format!("the no-op responder did not start: {line}"));
        }
        Ok(responder)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line)
    }

    /// What it has answered so far.
    fn counts(&mut self) -> Result<Counts, String> {
        writeln!(self.stdin, "counts").map_err(|e| e.to_string())?;
        let line = self.line()?;
        serde_json::from_str(line.trim()).map_err(|e| format!("bad responder output {line:?}: {e}"))
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The receive-path scenario of the ceiling case (issue 15): as `smbclient -M`
/// sends, a new session per message, 16 at once, 40-byte texts.
const CEILING_CASE: &str = "smbclient-style 40 B, c=16";
/// Text bytes per message in the ceiling case.
const CEILING_SIZE: usize = 40;
/// Sessions in flight in the ceiling case.
const CEILING_CONCURRENCY: &str = "16";
/// Upper bound of messages per run in the ceiling case (runs end by time).
const CEILING_MAX_COUNT: &str = "10000000";

/// Median, lowest and highest of a set of repeats.
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Self {
        Self {
            median: median(values.to_vec()),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// (max − min) / median, as a percentage.
    fn percent(&self) -> f64 {
        100.0 * (self.max - self.min) / self.median.max(f64::MIN_POSITIVE)
    }
}

/// The 1, 5 and 15 minute load averages, as the kernel prints them, and the
/// share of the last 60 s in which some task waited for CPU and for IO
/// (pressure stall information): an fsync-bound receiver such as netsend
/// suffers from IO another process causes, which the load average hides.
fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let stall = |resource: &str| {
        std::fs::read_to_string(format!("/proc/pressure/{resource}"))
            .ok()
            .and_then(|p| {
                let some = p.lines().find(|l| l.starts_with("some"))?;
                let avg = some
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("avg60="))?;
                Some(format!("{resource} {avg} %"))
            })
            .unwrap_or_else(|| format!("{resource} unknown"))
    };
    format!("{load} (stalled: {}, {})", stall("cpu"), stall("io"))
}

/// Runs the ceiling case: every repeat loads netsend, smbd and the no-op
/// responder for `secs` each (starting with a different one each repeat, so
/// that no receiver always follows the same one), checks that the responder
/// completed exactly what the generator counted, and prints the three side by
/// side with netsend's fraction of the ceiling. Returns the messages netsend
/// and smbd acknowledged.
fn ceiling_case(responder: &mut Responder, secs: u64, repeat: usize) -> Result<[usize; 2], String> {
    let receivers = [
        ("netsend", NETSEND.1, "NSBENCH"),
        ("smbd", SAMBA.1, "SMBBENCH"),
        ("no-op ceiling", CEILING.1, "NOOP"),
    ];
    let (secs_s, size_s) = (secs.to_string(), CEILING_SIZE.to_string());
    let load_before = load_average();
    let mut runs: [Vec<Measured>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for r in 0..repeat.max(1) {
        for k in 0..receivers.len() {
            let i = (r + k) % receivers.len();
            let (_, addr, name) = receivers[i];
            let before = responder.counts()?;
            let args = load_args(
                addr,
                name,
                CEILING_MAX_COUNT,
                CEILING_CONCURRENCY,
                &["--size", &size_s, "--duration-secs", &secs_s],
            );
            let m = in_client(&args)?;
            let after = responder.counts()?;
            let completed = (after.messages - before.messages) as usize;
            let expected = if i == 2 { m.ok } else { 0 };
            if completed != expected || after.refused != before.refused {
                return Err(format!(
                    "the no-op responder completed {completed} messages (refused {}) while the generator counted {expected}",
                    after.refused - before.refused
                ));
            }
            runs[i].push(m);
        }
    }
    let load_after = load_average();
    let rates: Vec<Vec<f64>> = runs
        .iter()
        .map(|ms| ms.iter().map(|m| m.per_sec).collect())
        .collect();
    let spreads: Vec<Spread> = rates.iter().map(|r| Spread::of(r)).collect();
    println!(
        "receive path, {CEILING_CASE} (new session per message): {secs} s per receiver and run, median of {} runs",
        repeat.max(1)
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8}",
        "receiver", "msg/s", "min", "max", "spread", "p50 ms", "p99 ms"
    );
    for ((label, _, _), (s, ms)) in receivers.iter().zip(spreads.iter().zip(&runs)) {
        println!(
            "{:<16} {:>10.1} {:>10.1} {:>10.1} {:>7.1}% {:>8.2} {:>8.2}",
            label,
            s.median,
            s.min,
            s.max,
            s.percent(),
            median(ms.iter().map(|m| m.p50_ms).collect()),
            median(ms.iter().map(|m| m.p99_ms).collect()),
        );
    }
    let ceiling = spreads[2].median.max(f64::MIN_POSITIVE);
    // The fraction within each repeat, whose three runs were seconds apart.
    let paired: Vec<f64> = rates[0]
        .iter()
        .zip(&rates[2])
        .map(|(n, c)| n / c.max(f64::MIN_POSITIVE))
        .collect();
    let paired = Spread::of(&paired);
    println!(
        "netsend / ceiling = {:.2} (per run {:.2}-{:.2}); smbd / ceiling = {:.3}; netsend / smbd = {:.1}x",
        spreads[0].median / ceiling,
        paired.min,
        paired.max,
        spreads[1].median / ceiling,
        spreads[0].median / spreads[1].median.max(f64::MIN_POSITIVE)
    );
    println!(
        "load average (1/5/15 min): {load_before} before, {load_after} after, on {} CPUs",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    // A failed or timed-out exchange (10 s) makes the rates meaningless.
    let errors: Vec<usize> = runs
        .iter()
        .map(|ms| ms.iter().map(|m| m.errors).sum())
        .collect();
    if errors.iter().any(|&e| e > 0) {
        return Err(format!(
            "the ceiling case had failed or timed-out exchanges: netsend {}, smbd {}, no-op ceiling {}",
            errors[0], errors[1], errors[2]
        ));
    }
    Ok([
        runs[0].iter().map(|m| m.ok).sum(),
        runs[1].iter().map(|m| m.ok).sum(),
    ])
}

/// Medians of one case on both receivers.
struct Row {
    case: String,
    netsend: [f64; 3],
    samba: [f64; 3],
}

/// What the receivers acknowledged, to check against what they hold.
struct Acknowledged {
    netsend: usize,
    smbd: usize,
    /// Text bytes of the messages smbd acknowledged.
    smbd_bytes: usize,
}

/// Checks that every acknowledged message was delivered, on both sides:
/// netsend's inbox (read with `cli`) holds as many messages, and smbd's
/// message log as many bytes.
fn check_delivery(
    cli: &dyn Fn(&[&str]) -> Result<String, String>,
    smb_log: &Path,
    acked: &Acknowledged,
) -> Result<(), String> {
    let inbox = cli(&["inbox", "--all", "--json"])?;
    let stored = serde_json::from_str::<Vec<serde_json::Value>>(&inbox)
        .map_err(|e| e.to_string())?
        .len();
    let smb_bytes = std::fs::metadata(smb_log).map_or(0, |m| m.len() as usize);
    println!(
        "delivery: netsend acknowledged {}, inbox holds {stored}; smbd acknowledged {} messages, message log has {smb_bytes} of {} bytes",
        acked.netsend, acked.smbd, acked.smbd_bytes
    );
    if stored != acked.netsend || smb_bytes != acked.smbd_bytes {
        return Err("an acknowledged message is missing".into());
    }
    Ok(())
}

/// Runs the whole benchmark, or only its ceiling case, and prints the tables.
pub(crate) fn run_benchmark(
    count: usize,
    repeat: usize,
    ceiling_secs: u64,
    only_ceiling: bool,
) -> Result<(), String> {
    let (dir, mut lan) = Lan::with_scratch()?;
    let smb_log = start_samba(dir.path())?;
    let config = start_netsend(&mut lan, &dir.path().join("netsend"), UNLIMITED)?;
    // Wait (bounded) until both name servers answer.
    for (addr, name) in [(NETSEND.1, "NSBENCH"), (SAMBA.1, "SMBBENCH")] {
        let mut up = false;
        for _ in 0..60 {
            if in_client(&["queries", "--target", addr, "--name", name, "--count", "1"])
                .is_ok_and(|m| m.ok == 1)
            {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if !up {
            return Err(format!("{name} never answered name queries"));
        }
    }
    let idle = (
        rss_kib(NETSEND.0, &["netsend"]),
        rss_kib(SAMBA.0, &["smbd", "nmbd", "smbd-notifyd", "cleanupd"]),
    );
    let exe = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("netsend");
    let cli = |args: &[&str]| {
        let mut full = vec![exe.to_str().unwrap_or("netsend"), "--config"];
        full.push(config.to_str().unwrap_or_default());
        full.extend_from_slice(args);
        sh(&full)
    };
    // The ceiling case first, before the other cases fill netsend's inbox.
    let mut responder = Responder::start()?;
    let [netsend_ok, smbd_ok] = ceiling_case(&mut responder, ceiling_secs, repeat)?;
    drop(responder);
    let mut acked = Acknowledged {
        netsend: netsend_ok,
        smbd: smbd_ok,
        smbd_bytes: smbd_ok * CEILING_SIZE,
    };
    if only_ceiling {
        check_delivery(&cli, &smb_log, &acked)?;
        return cli(&["messenger", "stop"]).map(drop);
    }
    println!();
    let cases: [(&str, usize, usize); 3] = [
        ("multi 20 B, c=1", 20, 1),
        ("multi 20 B, c=16", 20, 16),
        ("multi 1000 B (8 blocks), c=16", 1000, 16),
    ];
    let count_s = count.to_string();
    let mut rows = Vec::new();
    for (case, size, conc) in cases {
        let (size_s, conc_s) = (size.to_string(), conc.to_string());
        let mut runs: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..repeat.max(1) {
            for (i, (addr, name)) in [(NETSEND.1, "NSBENCH"), (SAMBA.1, "SMBBENCH")]
                .iter()
                .enumerate()
            {
                let args = load_args(addr, name, &count_s, &conc_s, &["--size", &size_s]);
                runs[i].push(in_client(&args)?);
            }
        }
        let pick = |ms: &[Measured]| {
            [
                median(ms.iter().map(|m| m.per_sec).collect()),
                median(ms.iter().map(|m| m.p50_ms).collect()),
                median(ms.iter().map(|m| m.p99_ms).collect()),
            ]
        };
        let ok: [usize; 2] = [
            runs[0].iter().map(|m| m.ok).sum(),
            runs[1].iter().map(|m| m.ok).sum(),
        ];
        acked.netsend += ok[0];
        acked.smbd += ok[1];
        acked.smbd_bytes += ok[1] * size;
        rows.push(Row {
            case: case.to_owned(),
            netsend: pick(&runs[0]),
            samba: pick(&runs[1]),
        });
    }
    let mut queries: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..repeat.max(1) {
        for (i, (addr, name)) in [(NETSEND.1, "NSBENCH"), (SAMBA.1, "SMBBENCH")]
            .iter()
            .enumerate()
        {
            queries[i].push(in_client(&[
                "queries", "--target", addr, "--name", name, "--count", &count_s,
            ])?);
        }
    }
    println!("netsend-bench: {count} messages per case and run, median of {repeat} runs");
    println!(
        "{:<32} {:>10} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>7}",
        "case", "netsend/s", "p50 ms", "p99 ms", "smbd/s", "p50 ms", "p99 ms", "ratio"
    );
    for r in &rows {
        println!(
            "{:<32} {:>10.1} {:>8.2} {:>8.2} | {:>10.1} {:>8.2} {:>8.2} | {:>6.1}x",
            r.case,
            r.netsend[0],
            r.netsend[1],
            r.netsend[2],
            r.samba[0],
            r.samba[1],
            r.samba[2],
            r.netsend[0] / r.samba[0].max(0.001)
        );
    }
    let q = |ms: &[Measured]| {
        (
            median(ms.iter().map(|m| m.per_sec).collect()),
            median(ms.iter().map(|m| m.p50_ms).collect()),
        )
    };
    let (nq, sq) = (q(&queries[0]), q(&queries[1]));
    println!(
        "{:<32} {:>10.1} {:>8.3} {:>8} | {:>10.1} {:>8.3} {:>8} | {:>6.1}x",
        "name queries (unicast, seq.)",
        nq.0,
        nq.1,
        "",
        sq.0,
        sq.1,
        "",
        nq.0 / sq.0.max(0.001)
    );
    println!(
        "idle RSS: netsend {} KiB, smbd+nmbd (all processes) {} KiB",
        idle.0, idle.1
    );
    check_delivery(&cli, &smb_log, &acked)?;

    cli(&["messenger", "stop"])?;
    users_case(&mut lan, dir.path(), repeat)?;

    // Flood: one host sends as fast as it can while another measures.
    start_netsend(&mut lan, &dir.path().join("netsend-flood"), ANTI_SPAM)?;
    println!(
        "flood: {FLOOD_SECS} s from {} at concurrency 16 while {} sends {VICTIM_COUNT} messages at c=1 (netsend with its default anti-spam on)",
        FLOODER.1, CLIENT.1
    );
    println!(
        "{:<10} {:>16} {:>16} {:>20} {:>14} {:>14}",
        "receiver",
        "quiet p50/p99",
        "flood p50/p99",
        "flood ok/refused",
        "RSS idle KiB",
        "RSS peak KiB"
    );
    for (label, (ns, addr), name, procs) in [
        ("netsend", NETSEND, "NSBENCH", &["netsend"][..]),
        (
            "smbd",
            SAMBA,
            "SMBBENCH",
            &["smbd", "nmbd", "smbd-notifyd", "cleanupd"][..],
        ),
    ] {
        let f = flood_case(ns, addr, name, procs)?;
        println!(
            "{:<10} {:>7.2}/{:<8.2} {:>7.2}/{:<8.2} {:>9}/{:<10} {:>14} {:>14}",
            label,
            f.quiet.p50_ms,
            f.quiet.p99_ms,
            f.under_flood.p50_ms,
            f.under_flood.p99_ms,
            f.flood.ok,
            f.flood.errors,
            f.rss_idle,
            f.rss_peak
        );
        if f.quiet.errors + f.under_flood.errors > 0 {
            return Err(format!(
                "{label}: the measured sender lost {} messages",
                f.quiet.errors + f.under_flood.errors
            ));
        }
    }
    Ok(())
}

/// How many people `/USERS` reaches in its case.
const USERS: usize = 1000;

/// `NET SEND /USERS` to 1,000 people: the sender host (on the flooder's
/// namespace) has 1,000 remote login sessions from the receiver's address,
/// where the same 1,000 users are logged in locally; prints the median time.
fn users_case(lan: &mut Lan, dir: &Path, repeat: usize) -> Result<(), String> {
    let users: Vec<String> = (1..=USERS).map(|i| format!("u{i:04}")).collect();
    let here = dir.join("users-receiver");
    std::fs::create_dir_all(&here).map_err(|e| e.to_string())?;
    let local = here.join("utmp");
    write_utmp(&local, users.iter().map(|u| (u.as_str(), "")))?;
    let top = format!("sessions = \"utmp\"\nutmp_path = \"{}\"", local.display());
    let limits = format!("{UNLIMITED}max_aliases = {}\n", USERS + 8);
    let receiver = start_host(lan, &RECEIVER, &here, &limits, &top)?;
    let exe = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("netsend");
    let cli = |config: &Path, args: &[&str]| {
        let mut full = vec![exe.to_str().unwrap_or("netsend"), "--config"];
        full.push(config.to_str().unwrap_or_default());
        full.extend_from_slice(args);
        sh(&full)
    };
    // The logged-in users become aliases shortly after start (bounded wait).
    let last = users.last().map(|u| u.to_uppercase()).unwrap_or_default();
    for _ in 0..100 {
        if cli(&receiver, &["name"]).is_ok_and(|names| names.contains(&last)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let there = dir.join("users-sender");
    std::fs::create_dir_all(&there).map_err(|e| e.to_string())?;
    let remote = there.join("utmp");
    write_utmp(&remote, users.iter().map(|u| (u.as_str(), NETSEND.1)))?;
    let top = format!("sessions = \"utmp\"\nutmp_path = \"{}\"", remote.display());
    let sender = Host {
        ns: FLOODER,
        computer: "NSUSERS",
    };
    let config = start_host(lan, &sender, &there, UNLIMITED, &top)?;
    let mut times = Vec::new();
    for _ in 0..repeat.max(1) {
        let started = std::time::Instant::now();
        let out = Command::new(&exe)
            .arg("--config")
            .arg(&config)
            .args(["send", "/USERS", "This server will shut down in 5 minutes"])
            .output()
            .map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        let reached = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("sent to"))
            .count();
        if !out.status.success() || reached != USERS {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first: Vec<&str> = stderr.lines().take(5).collect();
            return Err(format!(
                "/USERS reached {reached} of {USERS}: {}",
                first.join("\n")
            ));
        }
        times.push(elapsed.as_secs_f64());
    }
    let t = median(times);
    println!(
        "/USERS to {USERS} people (each a session to their name at their machine): {:.2} s median of {} runs, {:.0} copies/s",
        t,
        repeat.max(1),
        USERS as f64 / t
    );
    for config in [&config, &receiver] {
        cli(config, &["messenger", "stop"])?;
    }
    Ok(())
}

/// Writes a utmp file (glibc x86_64 layout, 384-byte records) of live user
/// processes (this process's pid), one per `(user, remote host)`.
fn write_utmp<'a>(
    path: &Path,
    sessions: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    let pid = std::process::id();
    let mut bytes = Vec::new();
    for (i, (user, host)) in sessions.enumerate() {
        let mut r = vec![0u8; 384];
        r[0..2].copy_from_slice(&7i16.to_le_bytes()); // USER_PROCESS
        r[4..8].copy_from_slice(&pid.to_le_bytes());
        let line = format!("pts/{i}");
        r[8..8 + line.len()].copy_from_slice(line.as_bytes());
        r[44..44 + user.len()].copy_from_slice(user.as_bytes());
        r[76..76 + host.len()].copy_from_slice(host.as_bytes());
        bytes.extend_from_slice(&r);
    }
    std::fs::write(path, bytes).map_err(|e| e.to_string())
}

/// The `load` subcommand's arguments: `count` messages to `name` at `addr`,
/// `concurrency` sessions at once, then the `extra` options.
pub(crate) fn load_args<'a>(
    addr: &'a str,
    name: &'a str,
    count: &'a str,
    concurrency: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "load",
        "--target",
        addr,
        "--name",
        name,
        "--count",
        count,
        "--concurrency",
        concurrency,
    ];
    args.extend_from_slice(extra);
    args
}

/// What one flood case measured.
struct Flood {
    quiet: Measured,
    under_flood: Measured,
    flood: Measured,
    rss_idle: u64,
    rss_peak: u64,
}

/// The measured sender's latency alone and during a bounded flood from
/// another host, and the receiver's memory before and at its peak.
fn flood_case(ns: &str, addr: &str, name: &str, procs: &[&str]) -> Result<Flood, String> {
    let count = VICTIM_COUNT.to_string();
    let victim = load_args(addr, name, &count, "1", &["--from", "VICTIM"]);
    let rss_idle = rss_kib(ns, procs);
    let quiet = in_client(&victim)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let flooder = Command::new("ip")
        .args(["netns", "exec", FLOODER.0])
        .arg(&exe)
        .args(load_args(
            addr,
            name,
            "10000000",
            "16",
            &[
                "--from",
                "FLOODER",
                "--duration-secs",
                &FLOOD_SECS.to_string(),
            ],
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let ns_owned = ns.to_owned();
    let procs_owned: Vec<String> = procs.iter().map(|p| (*p).to_owned()).collect();
    let sampler = std::thread::spawn(move || {
        let names: Vec<&str> = procs_owned.iter().map(String::as_str).collect();
        let mut peak = 0;
        while stopped.recv_timeout(Duration::from_millis(100)).is_err() {
            peak = peak.max(rss_kib(&ns_owned, &names));
        }
        peak
    });
    std::thread::sleep(Duration::from_secs(1));
    let under_flood = in_client(&victim)?;
    let out = flooder.wait_with_output().map_err(|e| e.to_string())?;
    let _ = stop.send(());
    let rss_peak = sampler.join().unwrap_or(0);
    let flood: Measured =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("bad flood output: {e}"))?;
    Ok(Flood {
        quiet,
        under_flood,
        flood,
        rss_idle,
        rss_peak,
    })
}
