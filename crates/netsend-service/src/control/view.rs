//! `View`, `ViewDomains`, `ViewHost`: the browse list (`netsend view`,
//! NetServerEnum). Anyone may ask: it holds what the LAN broadcasts. Whether
//! a host runs a messenger is asked lazily, here, by node status, and cached
//! in the list.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netsend_control::types::{BrowseDomain, BrowseHost, HostName, MessengerState};
use netsend_control::Response;
use netsend_proto::browse::Messenger;
use netsend_wire::name::suffix;
use netsend_wire::nbns::name_flags;
use netsend_wire::NetbiosName;

use crate::control::{Caller, Context, ControlError};
use crate::outbound::send::SendFailure;

/// Most node status queries one listing sends (the rest are asked by the
/// next one).
const MAX_STATUS_QUERIES: usize = 32;

/// The hosts of `domain` (default: our workgroup).
pub(crate) async fn hosts(
    ctx: &Context<'_>,
    _caller: &Caller,
    domain: Option<String>,
) -> Result<Response, ControlError> {
    let domain = match domain {
        None => ctx.browse.workgroup(),
        Some(d) => {
            NetbiosName::with_code_page(&d, suffix::WORKSTATION, ctx.config.code_page)
                .map_err(|_| ControlError::BadDomain(d.clone()))?;
            d.to_ascii_uppercase()
        }
    };
    let mut asking = tokio::task::JoinSet::new();
    for (name, address) in ctx.browse.wants_status(&domain, MAX_STATUS_QUERIES) {
        let query = ctx.network.node_status(address);
        asking.spawn(async move { (name, address, query.await) });
    }
    while let Some(answer) = asking.join_next().await {
        if let Ok((name, address, names)) = answer {
            ctx.browse.record_status(&name, address, names.as_deref());
        }
    }
    let now = Instant::now();
    let hosts = ctx
        .browse
        .hosts(&domain)
        .into_iter()
        .map(|h| {
            let (messenger, messenger_names) = match h.messenger {
                Messenger::Names(names) => (MessengerState::Yes, names),
                Messenger::None => (MessengerState::No, Vec::new()),
                Messenger::NoAnswer => (MessengerState::NoAnswer, Vec::new()),
                Messenger::Unknown => (MessengerState::Unknown, Vec::new()),
            };
            BrowseHost {
                name: h.name,
                comment: h.comment,
                server_type: h.server_type,
                os_version: h.os_version,
                address: h.address.to_string(),
                messenger,
                messenger_names,
                expires_in_secs: h.expires.saturating_duration_since(now).as_secs(),
            }
        })
        .collect();
    Ok(Response::Hosts { domain, hosts })
}

/// The workgroups heard.
pub(crate) fn domains(ctx: &Context<'_>, _caller: &Caller) -> Result<Response, ControlError> {
    let domains = ctx
        .browse
        .domains()
        .into_iter()
        .map(|d| BrowseDomain {
            name: d.name,
            master: d.master,
        })
        .collect();
    Ok(Response::Domains { domains })
}

/// The name table of `host`: an IPv4 address, a host of the browse list, or
/// a name resolved like a recipient's (its `<00>`).
pub(crate) async fn host(
    ctx: &Context<'_>,
    _caller: &Caller,
    host: String,
) -> Result<Response, ControlError> {
    let cp = ctx.config.code_page;
    let address = match host.parse::<Ipv4Addr>() {
        Ok(a) => a,
        Err(_) => match ctx.browse.find(&host) {
            Some(a) => a,
            None => {
                let name = NetbiosName::with_code_page(&host, suffix::WORKSTATION, cp)
                    .map_err(|e| SendFailure::InvalidParameter(format!("{host:?}: {e}")))?;
                ctx.network.resolve_host(name).await?
            }
        },
    };
    let query = ctx.network.node_status(address);
    let names = tokio::time::timeout(Duration::from_secs(5), query)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ControlError::NoNodeStatus {
            host: host.clone(),
            address,
        })?;
    let names = names
        .iter()
        .map(|n| HostName {
            name: cp.decode(n.name.trimmed()),
            suffix: n.name.suffix(),
            group: n.flags & name_flags::GROUP != 0,
        })
        .collect();
    Ok(Response::HostNames {
        host,
        address: address.to_string(),
        names,
    })
}
