//! The browse case (not a test): how long a fresh netsend host takes to
//! appear in `netsend view` on another netsend host, and in the browse list
//! of Samba's nmbd as local master browser (its `browse.dat`, which smbd
//! serves to `smbclient -L`). Bounded: each wait gives up after
//! [`WAIT_LIMIT`].

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::lan::{median, sh, start_host, Host, Lan, CLIENT, NETSEND, SAMBA};

/// Longest wait for one appearance.
const WAIT_LIMIT: Duration = Duration::from_secs(120);
/// How often the lists are looked at.
const POLL: Duration = Duration::from_millis(50);

/// The watching netsend host.
const WATCHER: Host = Host {
    ns: NETSEND,
    computer: "NSWATCH",
};

/// nmbd on the Samba host as local master browser of BENCH; its cache
/// directory (where `browse.dat` is written).
fn start_master(dir: &Path) -> Result<std::path::PathBuf, String> {
    let d = dir.join("lmb");
    for sub in ["run", "lock", "state", "cache", "private", "log", "ncalrpc"] {
        std::fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
    }
    let ds = d.display();
    let conf = d.join("smb.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\n netbios name = LMBBENCH\n workgroup = BENCH\n interfaces = eth0\n bind interfaces only = yes\n \
             disable netbios = no\n local master = yes\n preferred master = yes\n os level = 65\n domain master = no\n \
             wins support = no\n dns proxy = no\n name resolve order = bcast\n pid directory = {ds}/run\n \
             lock directory = {ds}/lock\n state directory = {ds}/state\n cache directory = {ds}/cache\n \
             private dir = {ds}/private\n ncalrpc dir = {ds}/ncalrpc\n log file = {ds}/log/log.%m\n log level = 1\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    sh(&[
        "ip",
        "netns",
        "exec",
        SAMBA.0,
        "nmbd",
        "-D",
        "-s",
        &conf.display().to_string(),
    ])?;
    Ok(d.join("cache"))
}

/// Polls `seen` until it holds; the time it took, or `None` past the limit.
fn time_until(start: Instant, mut seen: impl FnMut() -> bool) -> Option<Duration> {
    while start.elapsed() < WAIT_LIMIT {
        if seen() {
            return Some(start.elapsed());
        }
        std::thread::sleep(POLL);
    }
    None
}

/// Whether `netsend view` on the watcher (config `config`) lists `name`.
fn viewed(netsend: &Path, config: &Path, name: &str) -> bool {
    Command::new(netsend)
        .arg("--config")
        .arg(config)
        .args(["view", "--names"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == name)
        })
}

/// Runs the case `repeat` times, each with a fresh host on the client
/// namespace, and prints the medians.
pub(crate) fn run(repeat: usize) -> Result<(), String> {
    let (dir, mut lan) = Lan::with_scratch()?;
    let cache = start_master(dir.path())?;
    let watcher = start_host(&mut lan, &WATCHER, &dir.path().join("watch"), "", "")?;
    let netsend = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("netsend");
    // nmbd becomes master (an election of some tens of seconds) and lists
    // itself; only then is a fresh host's announcement taken.
    let dat = cache.join("browse.dat");
    let read = || std::fs::read_to_string(&dat).unwrap_or_default();
    time_until(Instant::now(), || read().contains("\"LMBBENCH\""))
        .ok_or("nmbd never became the local master browser")?;
    let (mut in_view, mut in_nmbd) = (Vec::new(), Vec::new());
    for run in 0..repeat {
        let name: &'static str = Box::leak(format!("FRESH{run}").into_boxed_str());
        let host = Host {
            ns: CLIENT,
            computer: name,
        };
        let start = Instant::now();
        let fresh = start_host(&mut lan, &host, &dir.path().join(name), "", "")?;
        let quoted = format!("\"{name}\"");
        let view = time_until(start, || viewed(&netsend, &watcher, name))
            .ok_or(format!("{name} never appeared in netsend view"))?;
        let nmbd = time_until(start, || read().contains(&quoted))
            .ok_or(format!("{name} never appeared in nmbd's browse.dat"))?;
        println!(
            "run {run}: netsend view {:.0} ms, nmbd browse.dat {:.0} ms",
            view.as_secs_f64() * 1e3,
            nmbd.as_secs_f64() * 1e3
        );
        in_view.push(view.as_secs_f64() * 1e3);
        in_nmbd.push(nmbd.as_secs_f64() * 1e3);
        // The fresh host stops (type 0), so the next one starts on a clean list.
        let _ = Command::new(&netsend)
            .arg("--config")
            .arg(&fresh)
            .args(["messenger", "stop"])
            .output();
        std::thread::sleep(Duration::from_secs(1));
    }
    println!(
        "browse: a fresh host appears in netsend view after {:.0} ms and in nmbd's list (browse.dat) after {:.0} ms (medians of {repeat}; from the start of its process)",
        median(in_view),
        median(in_nmbd)
    );
    Ok(())
}
