//! Interop with Samba: smbclient -M sends to netsend; netsend sends to smbd's
//! "message command"; nmblookup finds our names and we find nmbd's.

use std::path::Path;

use crate::harness::{have, is_root, require, stderr, stdout, write, Lan, Service};

/// A client smb.conf for smbclient/nmblookup.
pub(crate) fn client_conf(dir: &Path, interfaces: &str) -> String {
    let path = dir.join("client-smb.conf");
    write(
        &path,
        &format!(
            "[global]\n   workgroup = TESTGROUP\n   netbios name = SAMBACLI\n   {interfaces}\n   \
             disable netbios = no\n   name resolve order = bcast\n   client min protocol = NT1\n   \
             lock directory = {d}\n   state directory = {d}\n   cache directory = {d}\n   \
             private dir = {d}\n   pid directory = {d}\n   ncalrpc dir = {d}\n   log file = {d}/log.%m\n",
            d = dir.join("samba-client").display()
        ),
    );
    std::fs::create_dir_all(dir.join("samba-client")).unwrap();
    path.display().to_string()
}

#[test]
fn smbclient_delivers_to_netsend_on_loopback() {
    if !require(
        have("smbclient"),
        "Samba's smbclient (apt-get install smbclient)",
    ) {
        return;
    }
    let svc = Service::start("NSRECV", "", "");
    let conf = client_conf(
        svc.dir.path(),
        "interfaces = lo\n   bind interfaces only = yes",
    );
    let port = svc.session.port().to_string();
    let long: String = "0123456789abcdef".repeat(20);
    let texts = ["Hello NSRECV", long.as_str(), "Grüße aus Köln: é ü ß"];
    for text in texts {
        let out = crate::harness::run_with_stdin(
            {
                let mut c = std::process::Command::new("smbclient");
                c.args([
                    "-s",
                    &conf,
                    "-M",
                    "NSRECV",
                    "-I",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "alice",
                    "-N",
                    "-n",
                    "SAMBACLI",
                ]);
                c
            },
            Some(format!("{text}\n").as_bytes()),
        );
        // smbclient exits 0 even when refused: the inbox is the proof.
        assert!(
            !stderr(&out).contains("cli_message returned"),
            "{}",
            stderr(&out)
        );
    }
    let inbox = svc.wait_inbox(3);
    assert_eq!(inbox.len(), 3, "{inbox:?}");
    for (m, text) in inbox.iter().zip(texts) {
        assert_eq!(m["text"], format!("{text}\n"));
        assert_eq!(m["from"], "alice");
        assert_eq!(m["to"], "NSRECV");
    }
}

/// Whether namespace LANs with smbd, nmbd, smbclient and nmblookup can run
/// here; says why not, or fails under `NETSEND_REQUIRE_INTEROP`.
pub(crate) fn samba_available() -> bool {
    require(
        is_root()
            && have("ip")
            && have("smbd")
            && have("nmbd")
            && have("smbclient")
            && have("nmblookup"),
        "root, iproute2 and Samba (apt-get install samba smbclient)",
    )
}

/// Makes the state folders of an smbd + nmbd under `d` (`tmp` and `inbox`
/// writable by the guest account the message command runs as).
pub(crate) fn samba_dirs(d: &Path) {
    for sub in [
        "run", "lock", "state", "cache", "private", "log", "ncalrpc", "tmp", "inbox",
    ] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    for sub in ["tmp", "inbox"] {
        std::fs::set_permissions(
            d.join(sub),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
    }
}

/// Starts smbd (ports 139 and 445, messages appended to
/// `dir/smbd/inbox/msgs.log`) and nmbd as `name` of TESTGROUP in namespace
/// `ns`, on its `eth0`, with the smb.conf lines `globals` added; the config
/// is `dir/smbd/smb.conf`.
pub(crate) fn start_samba(dir: &Path, ns: &str, name: &str, globals: &str) {
    let d = dir.join("smbd");
    samba_dirs(&d);
    let d = d.display();
    write(
        &dir.join("smbd/smb.conf"),
        &format!(
            "[global]\n   netbios name = {name}\n   workgroup = TESTGROUP\n   server role = standalone server\n   \
             interfaces = eth0\n   bind interfaces only = yes\n   smb ports = 139 445\n   disable netbios = no\n   \
             server min protocol = NT1\n   \
             message command = /bin/sh -c 'cat %s >> {d}/inbox/msgs.log; rm %s'\n   \
             {globals}\n   local master = no\n   domain master = no\n   preferred master = no\n   \
             dns proxy = no\n   load printers = no\n   printing = bsd\n   printcap name = /dev/null\n   \
             disable spoolss = yes\n   passdb backend = tdbsam:{d}/private/passdb.tdb\n   pid directory = {d}/run\n   \
             lock directory = {d}/lock\n   state directory = {d}/state\n   cache directory = {d}/cache\n   \
             private dir = {d}/private\n   ncalrpc dir = {d}/ncalrpc\n   log file = {d}/log/log.%m\n   usershare path =\n"
        ),
    );
    let conf = format!("{d}/smb.conf");
    let mut smbd = std::process::Command::new("ip");
    smbd.args(["netns", "exec", ns, "smbd", "-D", "-s", &conf])
        .env("TMPDIR", format!("{d}/tmp"));
    assert!(smbd.status().unwrap().success());
    let mut nmbd = std::process::Command::new("ip");
    nmbd.args(["netns", "exec", ns, "nmbd", "-D", "-s", &conf]);
    let nmbd = crate::harness::run_with_stdin(nmbd, None);
    assert!(nmbd.status.success(), "{}", stderr(&nmbd));
}

/// smbd + nmbd on host `s`, netsend on host `n`, clients on both.
pub(crate) struct SambaLan {
    pub(crate) lan: Lan,
    pub(crate) dir: tempfile::TempDir,
}

impl SambaLan {
    /// The LAN with smbd and nmbd started on `s` (192.0.2.41); `None`
    /// (skipped) without root and Samba.
    pub(crate) fn new(tag: &str) -> Option<Self> {
        if !samba_available() {
            return None;
        }
        let lan = Lan::new(tag, &[("s", "192.0.2.41"), ("n", "192.0.2.42")]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        start_samba(
            dir.path(),
            &lan.ns("s"),
            "SMBHOST",
            "name resolve order = bcast\n   wins support = no",
        );
        // Wait (bounded) until smbd answers on 139.
        for _ in 0..100 {
            if lan
                .exec(
                    "n",
                    &["bash", "-c", "exec 3<>/dev/tcp/192.0.2.41/139"],
                    None,
                )
                .status
                .success()
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Some(Self { lan, dir })
    }

    /// The client smb.conf for smbclient and nmblookup on the LAN's hosts.
    pub(crate) fn client_conf(&self) -> String {
        client_conf(
            self.dir.path(),
            "interfaces = eth0\n   bind interfaces only = yes",
        )
    }

    /// Waits (bounded) until nmbd answers for `SMBHOST<03>`, which it does
    /// once it has registered its names (a few seconds).
    pub(crate) fn wait_for_nmbd(&self) {
        let conf = self.client_conf();
        let mut registered = false;
        for _ in 0..60 {
            let out = self
                .lan
                .exec("n", &["nmblookup", "-s", &conf, "SMBHOST#03"], None);
            if stdout(&out).contains("192.0.2.41 SMBHOST<03>") {
                registered = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        assert!(registered, "nmbd never answered for SMBHOST<03>");
    }

    /// Runs `smbclient -M to -U user` on `s` with `text` on its stdin, as
    /// SMBHOST, resolving `to` by broadcast.
    pub(crate) fn smbclient(&self, to: &str, user: &str, text: &str) -> std::process::Output {
        let conf = self.client_conf();
        self.lan.exec(
            "s",
            &[
                "smbclient",
                "-s",
                &conf,
                "-M",
                to,
                "-U",
                user,
                "-N",
                "-n",
                "SMBHOST",
            ],
            Some(text.as_bytes()),
        )
    }

    /// What smbd's message command has written so far.
    pub(crate) fn smbd_inbox(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("smbd/inbox/msgs.log")).unwrap_or_default()
    }
}

#[test]
fn netsend_and_samba_exchange_messages_on_port_139() {
    let Some(lab) = SambaLan::new("sm") else {
        return;
    };
    let svc = Service::start_in(
        Some(&lab.lan.ns("n")),
        "NSHOST",
        "192.0.2.42",
        139,
        137,
        "",
        "",
    );

    lab.wait_for_nmbd();

    // netsend -> smbd, resolving SMBHOST<03> by broadcast (nmbd answers).
    let text = "Hello smbd, from netsend: Grüße";
    let out = svc.cli(&["send", "smbhost", text]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut got = String::new();
    for _ in 0..50 {
        got = lab.smbd_inbox();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(got, text, "the file smbd handed to its message command");

    // smbclient -> netsend on port 139 (NBSS session request first), resolving
    // NSHOST<03> by broadcast: our name service answers.
    let out = lab.smbclient(
        "NSHOST",
        "bob",
        "Hello netsend, from smbclient\nsecond line\n",
    );
    assert!(
        !stderr(&out).contains("cli_message returned"),
        "{}",
        stderr(&out)
    );
    let inbox = svc.wait_inbox(1);
    assert_eq!(
        inbox.len(),
        1,
        "{inbox:?} / smbclient: {} {}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        inbox[0]["text"],
        "Hello netsend, from smbclient\nsecond line\n"
    );
    assert_eq!(inbox[0]["from"], "bob");

    // nmblookup -A and nbtscan list our names from a node status query.
    let conf = lab.client_conf();
    let out = lab
        .lan
        .exec("s", &["nmblookup", "-s", &conf, "-A", "192.0.2.42"], None);
    let status = stdout(&out);
    assert!(
        status.contains("NSHOST") && status.contains("<03>") && status.contains("<ACTIVE>"),
        "{status}"
    );
    assert!(
        status.contains("TESTGROUP") && status.contains("<GROUP>"),
        "{status}"
    );
    if have("nbtscan") {
        let out = lab
            .lan
            .exec("s", &["nbtscan", "-v", "-s", ":", "192.0.2.42"], None);
        let table = stdout(&out);
        assert!(
            table.contains("NSHOST") && table.contains(":03U"),
            "{table}{}",
            stderr(&out)
        );
    }

    // nmblookup (Samba's resolver) finds our <03> name by broadcast.
    let out = lab
        .lan
        .exec("s", &["nmblookup", "-s", &conf, "NSHOST#03"], None);
    assert!(
        stdout(&out).contains("192.0.2.42 NSHOST<03>"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Samba's nmbd as a WINS server on host `w`.
fn start_wins(lan: &Lan, dir: &Path) -> String {
    start_nmbd(lan, "w", dir, "WINSSRV", true)
}

/// Samba's nmbd on `host` with the NetBIOS name `netbios_name` (a WINS
/// server when `wins`); returns its smb.conf.
pub(crate) fn start_nmbd(
    lan: &Lan,
    host: &str,
    dir: &Path,
    netbios_name: &str,
    wins: bool,
) -> String {
    let d = dir.join(format!("nmbd-{host}"));
    for sub in ["run", "lock", "state", "cache", "private", "log", "ncalrpc"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let d = d.display();
    let conf = format!("{d}/smb.conf");
    let (support, order) = if wins {
        ("yes", "wins bcast")
    } else {
        ("no", "bcast")
    };
    write(
        Path::new(&conf),
        &format!(
            "[global]\n   netbios name = {netbios_name}\n   workgroup = TESTGROUP\n   interfaces = eth0\n   \
             bind interfaces only = yes\n   disable netbios = no\n   wins support = {support}\n   \
             local master = no\n   domain master = no\n   preferred master = no\n   dns proxy = no\n   \
             name resolve order = {order}\n   pid directory = {d}/run\n   lock directory = {d}/lock\n   \
             state directory = {d}/state\n   cache directory = {d}/cache\n   private dir = {d}/private\n   \
             ncalrpc dir = {d}/ncalrpc\n   log file = {d}/log/log.%m\n   log level = 1\n"
        ),
    );
    let out = lan.exec(host, &["nmbd", "-D", "-s", &conf], None);
    assert!(out.status.success(), "{}", stderr(&out));
    conf
}

#[test]
fn names_are_registered_with_and_resolved_through_a_wins_server() {
    if !require(
        is_root() && have("ip") && have("nmbd") && have("nmblookup") && have("python3"),
        "root, iproute2, Samba's nmbd and nmblookup, python3",
    ) {
        return;
    }
    let lan = Lan::new(
        "wi",
        &[
            ("w", "192.0.2.61"),
            ("a", "192.0.2.62"),
            ("b", "192.0.2.63"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = start_wins(&lan, dir.path());
    let wins_query = |name: &str| {
        let out = lan.exec(
            "w",
            &[
                "nmblookup",
                "-s",
                &conf,
                "-U",
                "192.0.2.61",
                "--recursion",
                name,
            ],
            None,
        );
        stdout(&out)
    };
    // Wait (bounded) until the WINS server answers for its own name.
    let mut up = false;
    for _ in 0..60 {
        if wins_query("WINSSRV#00").contains("192.0.2.61 WINSSRV<00>") {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(up, "nmbd's WINS server never answered");
    let wins = "[wins]\nserver = \"192.0.2.61\"\n";
    let a = Service::start_in(
        Some(&lan.ns("a")),
        "WINSA",
        "192.0.2.62",
        139,
        137,
        "",
        wins,
    );
    let b = Service::start_in(
        Some(&lan.ns("b")),
        "WINSB",
        "192.0.2.63",
        139,
        137,
        "",
        wins,
    );
    let out = a.cli(&["name", "helpdesk", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let names = stdout(&a.cli(&["name"]));
    assert!(names.contains("registered (broadcast, WINS)"), "{names}");
    // The WINS server now answers for our names.
    let answer = wins_query("HELPDESK#03");
    assert!(answer.contains("192.0.2.62 HELPDESK<03>"), "{answer}");
    assert!(wins_query("WINSA#03").contains("192.0.2.62 WINSA<03>"));

    // Register GHOST<03> at the WINS server for an address where nothing runs:
    // a broadcast query finds nothing (2273), so a NetworkError (2136) proves
    // that B asked the WINS server first.
    let mut ghost = netsend_wire::nbns::Packet::registration_request(
        0x5151,
        netsend_wire::NetbiosName::new("GHOST", 3).unwrap(),
        netsend_wire::nbns::NbEntry::new(
            false,
            netsend_wire::nbns::NodeType::H,
            "192.0.2.99".parse().unwrap(),
        ),
    );
    ghost.flags.broadcast = false;
    ghost.additional[0].ttl = 3600;
    let hex: String = ghost
        .to_bytes()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let send = "import socket,sys; s=socket.socket(2,2); s.settimeout(2); \
                s.sendto(bytes.fromhex(sys.argv[1]),('192.0.2.61',137)); print(s.recv(600).hex())";
    let out = lan.exec("b", &["python3", "-c", send, &hex], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = b.cli(&["send", "ghost", "boo"]);
    assert!(
        stderr(&out).contains("NERR_NetworkError (2136)"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("192.0.2.99"), "{}", stderr(&out));

    // B resolves A's alias and delivers; then A stops and releases its names at WINS.
    let out = b.cli(&["send", "helpdesk", "via WINS"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(a.wait_inbox(1)[0]["text"], "via WINS");
    assert!(a.stop().success());
    let mut released = false;
    for _ in 0..20 {
        if !wins_query("HELPDESK#03").contains("192.0.2.62") {
            released = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(released, "the WINS server still lists HELPDESK<03>");
}

#[test]
fn users_reaches_the_people_of_smbds_sessions() {
    let Some(lab) = SambaLan::new("su") else {
        return;
    };
    if !require(
        have("useradd") && have("smbpasswd"),
        "useradd and smbpasswd",
    ) {
        return;
    }
    // A real account with a Samba password, holding an SMB session from host
    // n, where the same person is logged in at the console.
    let _account = crate::harness::TestUsers::create(&["nsbob"], None);
    let smb_conf = format!("{}/smbd/smb.conf", lab.dir.path().display());
    let out = lab.lan.exec(
        "s",
        &["smbpasswd", "-c", &smb_conf, "-a", "-s", "nsbob"],
        Some(b"Secret-12\nSecret-12\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // netsend beside smbd on s (ports clear of smbd's and nmbd's), and on n.
    let top = format!("samba_config = \"{smb_conf}\"");
    let server = Service::start_in(
        Some(&lab.lan.ns("s")),
        "SRV",
        "192.0.2.41",
        1139,
        1137,
        &top,
        "",
    );
    let utmp = lab.dir.path().join("ws-utmp");
    std::fs::write(
        &utmp,
        crate::local::utmp_record(std::process::id(), "tty1", "nsbob", ""),
    )
    .unwrap();
    let top = format!("utmp_path = \"{}\"", utmp.display());
    let workstation = Service::start_in(
        Some(&lab.lan.ns("n")),
        "WS",
        "192.0.2.42",
        1139,
        1137,
        &top,
        "",
    );
    let conf = client_conf(
        lab.dir.path(),
        "interfaces = eth0\n   bind interfaces only = yes",
    );
    let mut session = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.lan.ns("n"), "smbclient", "-s", &conf])
        .args(["//192.0.2.41/IPC$", "-U", "nsbob%Secret-12"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once smbstatus lists the session, /USERS reaches nsbob at n.
    let mut report = String::new();
    for _ in 0..50 {
        let out = server.cli(&["send", "/USERS", "Files server going down"]);
        report = format!("{}{}", stdout(&out), stderr(&out));
        if report.contains("sent to nsbob (192.0.2.42:1139)") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = session.kill();
    let _ = session.wait();
    assert!(
        report.contains("sent to nsbob (192.0.2.42:1139)"),
        "{report}"
    );
    let inbox = workstation.wait_inbox(1);
    assert_eq!(inbox[0]["to"], "NSBOB");
    assert_eq!(inbox[0]["recipient_user"], "nsbob");
    assert_eq!(inbox[0]["text"], "Files server going down");
}
