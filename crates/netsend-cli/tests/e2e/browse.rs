//! Browsing against reality: Samba's nmbd as local master browser on a
//! namespace LAN lists our hosts (browse.dat, `smbclient -L`) and drops them
//! at our stop; `netsend view` lists nmbd's host and the other netsend
//! hosts with their messengers, and a host that stops announcing drops out
//! after its expiry.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netsend_proto::browse::{browse_datagram, Identity};
use netsend_wire::browse::{Announcement, AnnouncementKind, BrowseFrame};
use netsend_wire::NetbiosName;

use crate::harness::{have, is_root, require, stderr, stdout, write, Lan, Service};

/// nmbd (local master browser, os level 65) and smbd (NT1 allowed) on host
/// `s` of `lan`; returns the directory of their state.
fn start_master(lan: &Lan, dir: &Path) -> PathBuf {
    let d = dir.join("lmb");
    for sub in ["run", "lock", "state", "cache", "private", "log", "ncalrpc"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let ds = d.display();
    write(
        &d.join("smb.conf"),
        &format!(
            "[global]\n   netbios name = LMBHOST\n   workgroup = TESTGROUP\n   server string = Samba browse master\n   \
             server role = standalone server\n   interfaces = eth0\n   bind interfaces only = yes\n   \
             smb ports = 139\n   disable netbios = no\n   server min protocol = NT1\n   \
             local master = yes\n   preferred master = yes\n   os level = 65\n   domain master = no\n   \
             wins support = no\n   dns proxy = no\n   name resolve order = bcast\n   load printers = no\n   \
             printing = bsd\n   printcap name = /dev/null\n   disable spoolss = yes\n   \
             passdb backend = tdbsam:{ds}/private/passdb.tdb\n   pid directory = {ds}/run\n   \
             lock directory = {ds}/lock\n   state directory = {ds}/state\n   cache directory = {ds}/cache\n   \
             private dir = {ds}/private\n   ncalrpc dir = {ds}/ncalrpc\n   log file = {ds}/log/log.%m\n   \
             log level = 1\n   usershare path =\n"
        ),
    );
    let conf = format!("{ds}/smb.conf");
    for daemon in ["nmbd", "smbd"] {
        let out = lan.exec("s", &[daemon, "-D", "-s", &conf], None);
        assert!(out.status.success(), "{daemon}: {}", stderr(&out));
    }
    d
}

/// nmbd's browse list file (rewritten at most every 5 s).
fn browse_dat(lmb: &Path) -> String {
    std::fs::read_to_string(lmb.join("cache/browse.dat")).unwrap_or_default()
}

/// Polls `check` every half second for at most `secs`; whether it held.
fn within(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 2 {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

/// Broadcasts a HostAnnouncement of `name` into TESTGROUP from host `c`
/// (192.0.2.54, a plain socket on 138: nothing there answers node status),
/// with `periodicity_ms`.
fn announce_from_c(lan: &Lan, dir: &Path, name: &str, periodicity_ms: u32) {
    let identity = Identity {
        name: NetbiosName::new(name, 0).unwrap(),
        workgroup: NetbiosName::new("TESTGROUP", 0).unwrap(),
        comment: b"crafted \x1b[31mred".to_vec(),
        address: "192.0.2.54".parse().unwrap(),
        port: 138,
    };
    let frame = BrowseFrame::Announcement(
        Announcement::new(
            AnnouncementKind::Host,
            name.as_bytes(),
            1,
            periodicity_ms,
            &identity.comment,
        )
        .unwrap(),
    );
    let to = identity.workgroup.with_suffix(0x1D);
    let path = dir.join(format!("{name}.dgram"));
    std::fs::write(&path, browse_datagram(&identity, 1, &frame, to).unwrap()).unwrap();
    let script = "import socket, sys\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n\
                  s.bind(('192.0.2.54', 138))\n\
                  s.sendto(open(sys.argv[1], 'rb').read(), ('192.0.2.255', 138))\n";
    let out = lan.exec(
        "c",
        &["python3", "-c", script, &path.display().to_string()],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `netsend view` (with `args`) on `svc`, as JSON.
fn view_json(svc: &Service, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["view", "--json"];
    all.extend_from_slice(args);
    let out = svc.cli(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn names_in(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn nmbd_lists_netsend_hosts_and_netsend_view_lists_the_lan() {
    if !require(
        is_root()
            && have("ip")
            && have("nmbd")
            && have("smbd")
            && have("smbclient")
            && have("python3"),
        "root, iproute2, Samba (nmbd, smbd, smbclient), python3",
    ) {
        return;
    }
    let lan = Lan::new(
        "bw",
        &[
            ("s", "192.0.2.51"),
            ("a", "192.0.2.52"),
            ("b", "192.0.2.53"),
            ("c", "192.0.2.54"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let lmb = start_master(&lan, dir.path());
    let alpha = Service::start_in(
        Some(&lan.ns("a")),
        "ALPHA",
        "192.0.2.52",
        139,
        137,
        "",
        "[browse]\ncomment = \"alpha's messenger\"\n",
    );
    let beta = Service::start_in(Some(&lan.ns("b")), "BETA", "192.0.2.53", 139, 137, "", "");

    // nmbd wins the election, asks the workgroup to announce (to
    // TESTGROUP<1e>) and lists what answers; netsend answers within 10 s.
    let listed = within(150, || {
        let dat = browse_dat(&lmb);
        dat.contains("\"ALPHA\"") && dat.contains("\"BETA\"")
    });
    assert!(listed, "nmbd's browse.dat:\n{}", browse_dat(&lmb));
    let dat = browse_dat(&lmb);
    let beta_line = dat.lines().find(|l| l.contains("\"BETA\"")).unwrap();
    assert!(beta_line.contains("\"netsend messenger\""), "{beta_line}");
    assert!(beta_line.contains("\"TESTGROUP\""), "{beta_line}");
    // Workstation | Unix, plus nmbd's LOCAL_LIST_ONLY: never a file server.
    assert!(beta_line.contains("40000801"), "{beta_line}");

    // smbclient -L asks smbd (RAP NetServerEnum2 over SMB1), which reads
    // browse.dat.
    let client_conf = dir.path().join("client.conf");
    write(
        &client_conf,
        "[global]\n   workgroup = TESTGROUP\n   interfaces = eth0\n   bind interfaces only = yes\n   \
         client min protocol = NT1\n   name resolve order = bcast\n",
    );
    let conf = client_conf.display().to_string();
    let listing = lan.exec(
        "a",
        &[
            "smbclient",
            "-s",
            &conf,
            "-L",
            "LMBHOST",
            "-I",
            "192.0.2.51",
            "-N",
            "--option=client min protocol=NT1",
            // Without SPNEGO the server names its workgroup in the session
            // setup reply; with it, smbclient asks the list of the domain
            // NTLMSSP names, which is the host's own name on a standalone
            // server, and gets no servers.
            "--option=client use spnego=no",
        ],
        None,
    );
    let text = stdout(&listing);
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("ALPHA "))
        .unwrap_or_else(|| {
            let logs: String = std::fs::read_dir(lmb.join("log"))
                .unwrap()
                .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
                .collect();
            panic!(
                "smbclient -L:\n{text}\n{}\nbrowse.dat:\n{}\n{logs}",
                stderr(&listing),
                browse_dat(&lmb)
            )
        });
    assert!(row.contains("alpha's messenger"), "{row}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("BETA ")),
        "{text}"
    );

    // netsend view on ALPHA: nmbd's host with its server string, BETA, and
    // ALPHA itself, each with a messenger (nmbd registers LMBHOST<03>).
    let mut hosts = serde_json::Value::Null;
    let seen = within(60, || {
        hosts = view_json(&alpha, &[]);
        let names = names_in(&hosts);
        ["ALPHA", "BETA", "LMBHOST"]
            .iter()
            .all(|n| names.iter().any(|m| m == n))
    });
    assert!(seen, "{hosts:#}");
    let lmbhost = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "LMBHOST")
        .unwrap();
    assert_eq!(lmbhost["comment"], "Samba browse master");
    assert_eq!(lmbhost["address"], "192.0.2.51");
    for h in hosts.as_array().unwrap() {
        assert_eq!(h["messenger"], "yes", "{h:#}");
    }
    let beta_entry = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "BETA")
        .unwrap();
    assert_eq!(beta_entry["messenger_names"], serde_json::json!(["BETA"]));
    // The table, as NET VIEW prints it.
    let out = alpha.cli(&["view"]);
    let table = stdout(&out);
    assert!(
        table.starts_with("Server Name            Remark"),
        "{table}"
    );
    let lmb_row = table
        .lines()
        .find(|l| l.starts_with("\\\\LMBHOST"))
        .unwrap();
    assert!(lmb_row.contains("Samba browse master"), "{lmb_row}");
    assert!(lmb_row.trim_end().ends_with("yes"), "{lmb_row}");
    assert!(
        table
            .trim_end()
            .ends_with("The command completed successfully."),
        "{table}"
    );
    // The workgroups: ours, with nmbd as its master.
    let out = alpha.cli(&["view", "/DOMAIN"]);
    let domains = stdout(&out);
    let row = domains
        .lines()
        .find(|l| l.starts_with("TESTGROUP"))
        .unwrap();
    assert!(row.contains("LMBHOST"), "{domains}");
    // \\HOST: its message names, by node status.
    let out = alpha.cli(&["view", "\\\\LMBHOST"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).lines().any(|l| l == "LMBHOST"),
        "{}",
        stdout(&out)
    );
    // Completion of send's recipient offers the list.
    let out = alpha.cli(&["view", "--names"]);
    let names = stdout(&out);
    for n in ["ALPHA", "BETA", "LMBHOST"] {
        assert!(names.lines().any(|l| l == n), "{names}");
    }

    // NetServerEnum from a C program linked against libnetapi32.
    if have("gcc") {
        net_server_enum(&alpha);
    }

    // A host with no messenger that stops announcing: listed with "?" (no
    // node status answer) and its comment sanitised, gone after three of
    // its announced 3 s periods.
    announce_from_c(&lan, dir.path(), "GHOST", 3000);
    let mut ghost = serde_json::Value::Null;
    assert!(
        within(10, || {
            ghost = view_json(&alpha, &[]);
            names_in(&ghost).iter().any(|n| n == "GHOST")
        }),
        "{ghost:#}"
    );
    let out = alpha.cli(&["view"]);
    let table = stdout(&out);
    let row = table.lines().find(|l| l.starts_with("\\\\GHOST")).unwrap();
    assert!(!row.contains('\u{1b}'), "{row:?}");
    assert!(
        row.contains("crafted") && row.trim_end().ends_with('?'),
        "{row:?}"
    );
    assert!(
        within(20, || !names_in(&view_json(&alpha, &[]))
            .iter()
            .any(|n| n == "GHOST")),
        "GHOST never expired"
    );

    // BETA stops: its type 0 announcement takes it out of nmbd's list and
    // of ALPHA's at once.
    beta.stop();
    assert!(
        within(30, || !browse_dat(&lmb).contains("\"BETA\"")),
        "{}",
        browse_dat(&lmb)
    );
    assert!(!names_in(&view_json(&alpha, &[]))
        .iter()
        .any(|n| n == "BETA"));
}

/// Builds `netapi/servers.c` against lmserver.h and runs it on `svc`'s list
/// (LMBHOST, BETA and ALPHA in TESTGROUP).
fn net_server_enum(svc: &Service) {
    let lib = crate::netapi::library();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let build = tempfile::tempdir().unwrap();
    let exe = build.path().join("servers");
    let out = std::process::Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(manifest.join("tests/e2e/netapi/servers.c"))
        .arg("-I")
        .arg(manifest.join("../netsend-netapi/include"))
        .arg("-L")
        .arg(lib.parent().unwrap())
        .arg("-lnetapi32")
        .output()
        .unwrap();
    assert!(out.status.success(), "gcc: {}", stderr(&out));
    let out = std::process::Command::new(&exe)
        .args(["LMBHOST", "BETA", "TESTGROUP"])
        .env("LD_LIBRARY_PATH", lib.parent().unwrap())
        .env("NETSEND_CONFIG", &svc.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "servers ({}):\n{}\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
}
