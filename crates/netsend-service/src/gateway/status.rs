//! What `netsend gateway status` shows: the connection, the stream's and
//! this site's consumers' state (asked of JetStream, with a bounded wait),
//! the directory and the counters.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_lite::StreamExt as _;
use netsend_control::types::{
    GatewayConsumer, GatewayCounters, GatewayDirectory, GatewayPeer, GatewaySite, GatewayState,
    GatewayStream,
};

use super::Gateway;
use crate::config::{GatewayConfig, GatewayMode};

/// Longest wait for JetStream's answers.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);
/// Most consumers listed.
const MAX_CONSUMERS: usize = 32;

/// The gateway's state now.
pub(crate) async fn state(gateway: &Gateway, config: &GatewayConfig) -> GatewayState {
    let site = gateway.site.clone();
    let mut connection = gateway.link.connection();
    let js = gateway.link.jetstream();
    if let Some(js) = &js {
        let info = js.client().server_info();
        connection.server = Some(format!(
            "{}:{} ({})",
            info.host, info.port, info.server_name
        ));
    }
    let (stream, consumers) = match &js {
        Some(js) => tokio::time::timeout(ASK_TIMEOUT, ask(js, config, site.as_str()))
            .await
            .unwrap_or_default(),
        None => (None, Vec::new()),
    };
    let names = gateway.directory_state();
    let sites: Vec<GatewaySite> = names
        .sites
        .into_iter()
        .map(|(site, names)| GatewaySite {
            site: site.to_string(),
            names,
        })
        .collect();
    let b = gateway.broadcasts.counters();
    let m = &gateway.metrics;
    GatewayState {
        site: site.to_string(),
        mode: match config.mode {
            GatewayMode::Proxy => "proxy",
            GatewayMode::Direct => "direct",
        }
        .to_owned(),
        connection,
        stream,
        consumers,
        directory: GatewayDirectory {
            names: sites.iter().map(|s| s.names).sum(),
            sites,
            published: names.published,
            conflicts: names.conflicts,
            last_sync: names.last_sync.map(super::names::unix_ms),
            last_error: names.last_error.map(|(_, e)| e),
        },
        // Broadcasts and directed messages together.
        counters: GatewayCounters {
            published: b.published.load(Ordering::Relaxed) + m.gateway_count("published"),
            delivered: b.rebroadcast.load(Ordering::Relaxed) + m.gateway_count("delivered"),
            failed: b.failed.load(Ordering::Relaxed)
                + m.gateway_count("failed")
                + m.gateway_count("publish_failed"),
            spooled: gateway.broadcasts.spooled() as u64,
        },
    }
}

/// The stream's state and this site's consumers (names ending in
/// `-<SITE>`); what cannot be asked is left out.
async fn ask(
    js: &async_nats::jetstream::Context,
    config: &GatewayConfig,
    site: &str,
) -> (Option<GatewayStream>, Vec<GatewayConsumer>) {
    let Ok(mut s) = js.get_stream(&config.stream).await else {
        return (None, Vec::new());
    };
    let stream = s.info().await.ok().map(|info| {
        let cluster = info.cluster.clone().unwrap_or_default();
        GatewayStream {
            name: info.config.name.clone(),
            messages: info.state.messages,
            bytes: info.state.bytes,
            replicas: info.config.num_replicas,
            leader: cluster.leader,
            peers: cluster
                .replicas
                .into_iter()
                .map(|p| GatewayPeer {
                    name: p.name,
                    current: p.current,
                    lag: p.lag.unwrap_or(0),
                })
                .collect(),
        }
    });
    let suffix = format!("-{site}");
    let mut consumers = Vec::new();
    let mut list = s.consumers();
    while let Some(Ok(c)) = list.next().await {
        if c.name.ends_with(&suffix) {
            consumers.push(GatewayConsumer {
                name: c.name,
                num_pending: c.num_pending,
                num_ack_pending: c.num_ack_pending,
                num_redelivered: c.num_redelivered,
            });
        }
        if consumers.len() >= MAX_CONSUMERS {
            break;
        }
    }
    consumers.sort_by(|a, b| a.name.cmp(&b.name));
    (stream, consumers)
}
