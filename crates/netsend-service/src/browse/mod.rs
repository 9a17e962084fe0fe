//! Browsing: our announcements on `\MAILSLOT\BROWSE` (one
//! [`Announcer`] per broadcast interface, driven by [`Browse::run`]) and the
//! host list built from the announcements heard on UDP 138
//! ([`Browse::take`]). Every decision is `netsend_proto::browse`'s; this
//! room keeps its state, runs its timers and does its IO.

mod status;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;
use std::time::Instant;

use netsend_proto::browse::{
    is_request_for, Announcer, DomainEntry, Heard, HostEntry, HostList, Identity,
};
use netsend_proto::display::LogSafe;
use netsend_proto::interface::Interface;
use netsend_wire::name::suffix;
use netsend_wire::nbns::NodeName;
use netsend_wire::{CodePage, NetbiosName};
use tokio::sync::Notify;

use crate::config::{Config, ConfigError};
use crate::shutdown::Shutdown;

pub(crate) use status::node_status;

/// One interface's announcer, with where its datagrams go.
struct Announcing {
    source: Ipv4Addr,
    broadcast: Ipv4Addr,
    announcer: Announcer,
}

/// The browse component: the host list and our announcers.
pub(crate) struct Browse {
    code_page: CodePage,
    workgroup: NetbiosName,
    computer: NetbiosName,
    port: u16,
    list: Mutex<HostList>,
    announcers: Mutex<Vec<Announcing>>,
    wake: Notify,
}

impl Browse {
    /// The component for `config`, announcing on each interface with a
    /// broadcast address unless `[browse] announce = false`.
    pub(crate) fn new(config: &Config, interfaces: &[Interface]) -> Result<Self, ConfigError> {
        let invalid = |key: &str, e: String| ConfigError::Invalid(key.into(), e);
        let cp = config.code_page;
        let workgroup = NetbiosName::with_code_page(&config.workgroup, suffix::WORKSTATION, cp)
            .map_err(|e| invalid("workgroup", e.to_string()))?;
        let computer = NetbiosName::with_code_page(&config.computer_name, suffix::WORKSTATION, cp)
            .map_err(|e| invalid("computer_name", e.to_string()))?;
        let comment = config.browse.comment_bytes(cp)?;
        let port = config.network.datagram_port;
        let announcers = interfaces
            .iter()
            .filter(|_| config.browse.announce)
            .filter_map(|iface| {
                let identity = Identity {
                    name: computer,
                    workgroup,
                    comment: comment.clone(),
                    address: iface.address,
                    port,
                };
                Some(Announcing {
                    source: iface.address,
                    broadcast: iface.broadcast?,
                    announcer: Announcer::new(identity, crate::naming::registrar::random_seed()),
                })
            })
            .collect();
        Ok(Self {
            code_page: cp,
            workgroup,
            computer,
            port,
            list: Mutex::new(HostList::new()),
            announcers: Mutex::new(announcers),
            wake: Notify::new(),
        })
    }

    /// Takes a browse frame heard from `peer` (admitted already): an
    /// announcement goes into the list, a request for our workgroup (not
    /// our own, heard back) brings an announcement soon.
    pub(crate) fn take(&self, peer: Ipv4Addr, own_address: bool, heard: &Heard) {
        let now = Instant::now();
        let ours = own_address && heard.source.trimmed() == self.computer.trimmed();
        if is_request_for(heard, &self.workgroup) {
            if !ours {
                for a in self.announcers.lock().expect("announcers lock").iter_mut() {
                    a.announcer.handle_request(now);
                }
                self.wake.notify_one();
            }
            return;
        }
        let taken =
            self.list
                .lock()
                .expect("host list lock")
                .observe(now, peer, heard, self.code_page);
        if let Err(refused) = taken {
            tracing::debug!(%peer, source = %LogSafe(&heard.source.to_string()), ?refused, "browse announcement not listed");
        }
    }

    /// Our workgroup, as configured.
    pub(crate) fn workgroup(&self) -> String {
        self.workgroup.to_text(self.code_page)
    }

    /// The hosts of `workgroup`.
    pub(crate) fn hosts(&self, workgroup: &str) -> Vec<HostEntry> {
        let list = self.list.lock().expect("host list lock");
        list.hosts(Instant::now(), workgroup)
    }

    /// The workgroups heard, ours among them.
    pub(crate) fn domains(&self) -> Vec<DomainEntry> {
        let list = self.list.lock().expect("host list lock");
        list.domains(Instant::now(), &self.workgroup())
    }

    /// Hosts of `workgroup` whose messenger is not known (or no longer).
    pub(crate) fn wants_status(&self, workgroup: &str, limit: usize) -> Vec<(String, Ipv4Addr)> {
        let list = self.list.lock().expect("host list lock");
        list.wants_status(Instant::now(), workgroup, limit)
    }

    /// Records a host's node status answer (`None`: no answer).
    pub(crate) fn record_status(&self, name: &str, address: Ipv4Addr, names: Option<&[NodeName]>) {
        let mut list = self.list.lock().expect("host list lock");
        list.record_status(Instant::now(), name, address, names, self.code_page);
    }

    /// The address of the host `name` in any workgroup of the list.
    pub(crate) fn find(&self, name: &str) -> Option<Ipv4Addr> {
        let list = self.list.lock().expect("host list lock");
        let now = Instant::now();
        list.domains(now, &self.workgroup())
            .iter()
            .flat_map(|d| list.hosts(now, &d.name))
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.address)
    }

    /// Runs the announcers until shutdown, then sends each one's type 0
    /// announcement.
    pub(crate) async fn run(&self, shutdown: Shutdown) {
        let now = Instant::now();
        for a in self.announcers.lock().expect("announcers lock").iter_mut() {
            a.announcer.start(now);
        }
        self.flush().await;
        loop {
            let next = self
                .announcers
                .lock()
                .expect("announcers lock")
                .iter()
                .filter_map(|a| a.announcer.poll_timeout())
                .min();
            let Some(next) = next else {
                // Nothing to announce ([browse] announce = false).
                shutdown.cancelled().await;
                return;
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep_until(next.into()) => {}
            }
            let now = Instant::now();
            for a in self.announcers.lock().expect("announcers lock").iter_mut() {
                a.announcer.handle_timeout(now);
            }
            self.flush().await;
        }
        for a in self.announcers.lock().expect("announcers lock").iter_mut() {
            a.announcer.stop();
        }
        self.flush().await;
    }

    /// Broadcasts what the announcers have queued.
    async fn flush(&self) {
        let mut out = Vec::new();
        for a in self.announcers.lock().expect("announcers lock").iter_mut() {
            while let Some(bytes) = a.announcer.poll_transmit() {
                out.push((a.source, a.broadcast, bytes));
            }
        }
        for (source, broadcast, bytes) in out {
            let target = SocketAddrV4::new(broadcast, self.port);
            match crate::outbound::datagrams::send_from(source, &bytes, target).await {
                Ok(()) => tracing::debug!(%target, "browse datagram sent"),
                Err(e) => tracing::warn!(%target, error = %LogSafe(&e), "browse datagram not sent"),
            }
        }
    }
}
