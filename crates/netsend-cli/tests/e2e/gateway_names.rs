//! Names between sites (issue 18) on the multi-site lab: a host at one site
//! registers with its gateway's WINS server, and a plain broadcast
//! `nmblookup` at the other site is answered by that site's gateway, with
//! its own address in proxy mode and with the owner's in direct mode. Every
//! wait is bounded; no timing is asserted.

use std::time::{Duration, Instant};

use crate::harness::{have, require, stdout, Service};
use crate::samba::client_conf;
use crate::sites::lab::{sites_available, Site, SitesLab, SITE_A, SITE_B};

/// The longest a name may take to become known at the other site.
const KNOWN_WAIT: Duration = Duration::from_secs(90);

/// `site`'s gateway in answer mode `mode`, running the site's WINS server.
fn gateway_in(lab: &SitesLab, site: Site, mode: &str) -> Service {
    let gateway = format!(
        "[gateway]\nsite = \"{}\"\nmode = \"{mode}\"\n{}\n[wins_server]\nenabled = true\n",
        site.name,
        SitesLab::nats_toml()
    );
    let computer = format!("GW{}", site.letter.to_uppercase());
    let ns = lab.ns(&site.gateway_host());
    Service::start_in(Some(&ns), &computer, site.gateway, 139, 137, "", &gateway)
}

/// Broadcasts `nmblookup NAME` from lab host `host` of `site` until an
/// answer names `name`; that answer.
fn broadcast_until_known(lab: &SitesLab, site: Site, host: &str, name: &str) -> String {
    let conf = client_conf(
        &lab.dir().join(host),
        "interfaces = eth0\n   bind interfaces only = yes",
    );
    let (shown, _) = name.split_once('#').unwrap();
    let start = Instant::now();
    loop {
        let out = lab.exec(
            host,
            &["nmblookup", "-s", &conf, "-B", site.broadcast, name],
            None,
        );
        let said = stdout(&out);
        if said.contains(&format!(" {shown}<")) {
            return said;
        }
        assert!(
            start.elapsed() < KNOWN_WAIT,
            "{name} never answered at {}: {said}",
            site.name
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_broadcast_query_at_one_site_is_answered_for_a_name_held_at_the_other() {
    if !sites_available()
        || !require(
            have("nmblookup"),
            "Samba's nmblookup (apt-get install samba-common-bin)",
        )
    {
        return;
    }
    let lab = SitesLab::new("gn", &[("aq", 10)], &[("bhost", 10)]);
    let _gwa = gateway_in(&lab, SITE_A, "proxy");
    let _gwb = gateway_in(&lab, SITE_B, "direct");
    // A netsend host at site B registers its names with B's WINS server.
    let wins = format!("[wins]\nserver = \"{}\"\n", SITE_B.gateway);
    let _bhost = Service::start_in(
        Some(&lab.ns("bhost")),
        "BHOST",
        &SITE_B.addr(10),
        139,
        137,
        "",
        &wins,
    );

    // Site A (proxy): its gateway answers for BHOST with its own address.
    let said = broadcast_until_known(&lab, SITE_A, "aq", "BHOST#03");
    assert!(
        said.contains(&format!("{} BHOST<03>", SITE_A.gateway)),
        "{said}"
    );
    assert!(!said.contains(&SITE_B.addr(10)), "{said}");

    // Site B (direct): its gateway answers for site A's gateway name GWA
    // with the owner's address at site A.
    let said = broadcast_until_known(&lab, SITE_B, "bhost", "GWA#03");
    assert!(
        said.contains(&format!("{} GWA<03>", SITE_A.gateway)),
        "{said}"
    );

    // A name nobody holds gets no answer.
    let conf = client_conf(
        &lab.dir().join("aq"),
        "interfaces = eth0\n   bind interfaces only = yes",
    );
    let out = lab.exec(
        "aq",
        &[
            "nmblookup",
            "-s",
            &conf,
            "-B",
            SITE_A.broadcast,
            "NOBODY#03",
        ],
        None,
    );
    assert!(!stdout(&out).contains(" NOBODY<"), "{}", stdout(&out));
}
