//! The tests against reality of issue 18, on the [`SitesLab`]: a netsend
//! gateway per site (`[gateway]` + `[wins_server] enabled`), netsend hosts
//! using their site's gateway as WINS server, Samba at the sites, and the
//! 3-node cluster with its faults. Every wait is bounded; no timing is
//! asserted.

use std::time::{Duration, Instant};

use super::lab::{sites_available, stream_info_until, Site, SitesLab, SITE_A, SITE_B};
use crate::harness::{have, require, stdout, Service};
use crate::samba::client_conf;

/// Limits off on every lab service: the load comes from one address (the
/// sender, or a gateway delivering for a whole site).
const LIMITS: &str = "[limits]\nmax_connections = 1024\nmax_connections_per_source = 1024\n\
                      messages_per_minute = 0\nsender_messages_per_minute = 0\ninbox_quota = 0\n";
/// The longest a name may take to become known at another site.
const CROSS_WAIT: Duration = Duration::from_secs(90);

/// The lab with both gateways running.
struct Sites {
    _gateways: Vec<Service>,
    lab: SitesLab,
}

impl Sites {
    /// The lab (hosts per site: short name, last octet) with a gateway per
    /// site; `None` (skipped) where the lab cannot be built.
    fn new(tag: &str, hosts_a: &[(&str, u8)], hosts_b: &[(&str, u8)]) -> Option<Self> {
        if !sites_available() {
            return None;
        }
        let lab = SitesLab::new(tag, hosts_a, hosts_b);
        let gateways = [SITE_A, SITE_B]
            .iter()
            .map(|site| gateway(&lab, *site))
            .collect();
        Some(Self {
            _gateways: gateways,
            lab,
        })
    }

    /// Starts netsend `computer` on lab host `host` of `site` (address
    /// `.last`), its site's gateway as WINS server, `extra` TOML appended.
    fn host(&self, site: Site, host: &str, last: u8, computer: &str, extra: &str) -> Service {
        let extra = format!(
            "{LIMITS}[wins]\nserver = \"{}\"\n[queue]\nretry_secs = 1\nmax_retry_secs = 2\n{extra}",
            site.gateway
        );
        Service::start_in(
            Some(&self.lab.ns(host)),
            computer,
            &site.addr(last),
            139,
            137,
            "",
            &extra,
        )
    }

    /// A client smb.conf for lab host `host` resolving through `site`'s
    /// gateway (WINS) only.
    fn client_conf(&self, site: Site, host: &str) -> String {
        client_conf(
            &self.lab.dir().join(host),
            &format!(
                "interfaces = eth0\n   bind interfaces only = yes\n   wins server = {}\n   \
                 name resolve order = wins",
                site.gateway
            ),
        )
    }

    /// `nmblookup NAME` from lab host `host` sent to `site`'s gateway; its
    /// stdout.
    fn lookup(&self, site: Site, host: &str, name: &str) -> String {
        let conf = self.client_conf(site, host);
        let out = self.lab.exec(
            host,
            &["nmblookup", "-s", &conf, "-U", site.gateway, name],
            None,
        );
        stdout(&out)
    }

    /// Waits (bounded) until `site`'s gateway answers a query from `host`
    /// for `name` (`NAME#XX`); the answer.
    fn wait_known(&self, site: Site, host: &str, name: &str) -> String {
        let start = Instant::now();
        let (shown, _) = name.split_once('#').unwrap();
        loop {
            let said = self.lookup(site, host, name);
            if said.contains(&format!(" {shown}<")) {
                return said;
            }
            assert!(
                start.elapsed() < CROSS_WAIT,
                "{name} never became known at {}: {said}",
                site.name
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The gateway of `site`: the site's WINS server and its link to the cluster.
fn gateway(lab: &SitesLab, site: Site) -> Service {
    let extra = format!(
        "{LIMITS}[gateway]\nsite = \"{}\"\n{}\n[wins_server]\nenabled = true\n",
        site.name,
        SitesLab::nats_toml()
    );
    Service::start_in(
        Some(&lab.ns(&site.gateway_host())),
        &format!("GW{}", site.letter.to_uppercase()),
        site.gateway,
        139,
        137,
        "",
        &extra,
    )
}

#[test]
fn both_gateways_join_the_cluster_and_make_the_replicated_stream_and_buckets() {
    let Some(sites) = Sites::new("js", &[], &[]) else {
        return;
    };
    let stream = stream_info_until(&sites.lab, "NETSEND", |i| {
        i["cluster"]["replicas"].as_array().map(Vec::len) == Some(2)
    });
    let config = &stream["config"];
    assert_eq!(
        config["subjects"],
        serde_json::json!(["netsend.>"]),
        "{stream}"
    );
    assert_eq!(config["storage"], "file");
    assert_eq!(config["num_replicas"], 3);
    assert_eq!(config["duplicate_window"], 600_000_000_000u64);
    assert_eq!(config["max_age"], 24 * 3600 * 1_000_000_000u64);
    for bucket in ["KV_netsend_names", "KV_netsend_seen"] {
        let info = stream_info_until(&sites.lab, bucket, |i| i["config"]["num_replicas"] == 3);
        assert_eq!(info["config"]["num_replicas"], 3, "{info}");
    }
    // Both gateways hold a client connection to the cluster.
    let connz: usize = (0..3)
        .filter_map(|i| sites.lab.http_get(i, "/connz").ok())
        .flat_map(|c| c["connections"].as_array().cloned().unwrap_or_default())
        .filter(|c| {
            [SITE_A.backbone, SITE_B.backbone].contains(&c["ip"].as_str().unwrap_or_default())
        })
        .count();
    assert!(connz >= 2, "gateway connections: {connz}");
}

#[test]
fn names_registered_at_site_b_resolve_at_site_a() {
    if !require(have("nmblookup"), "Samba's nmblookup") {
        return;
    }
    let Some(sites) = Sites::new("nm", &[("a1", 10)], &[("b1", 10)]) else {
        return;
    };
    let _b1 = sites.host(SITE_B, "b1", 10, "SOUTHPC", "");
    // Site B's own server knows the name with its owner's address.
    let at_b = sites.wait_known(SITE_B, "gwb", "SOUTHPC#03");
    assert!(at_b.contains("198.51.100.10 SOUTHPC<03>"), "{at_b}");
    // Site A answers with its own gateway (proxy mode: the sites cannot
    // reach each other).
    let at_a = sites.wait_known(SITE_A, "a1", "SOUTHPC#03");
    assert!(at_a.contains("192.0.2.1 SOUTHPC<03>"), "{at_a}");
    // A name held nowhere is not made up.
    let nowhere = sites.lookup(SITE_A, "a1", "NOBODYHERE#03");
    assert!(!nowhere.contains("NOBODYHERE<03>"), "{nowhere}");
}
