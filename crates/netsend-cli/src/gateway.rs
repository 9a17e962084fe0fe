//! `netsend gateway status`: the site gateway's connection to the NATS
//! cluster, the stream and consumers, the directory of other sites' names
//! and its counters. Every string from the cluster is sanitised before it
//! is printed.

use netsend_control::config::ClientConfig;
use netsend_control::types::GatewayState;
use netsend_control::{Request, Response};
use netsend_proto::display::sanitize_name as clean;

use crate::cmd::{call, print_json, unexpected, when};
use crate::Failure;

/// Runs `netsend gateway status`.
pub(crate) async fn status(config: &ClientConfig, json: bool) -> Result<(), Failure> {
    match call(config, Request::GatewayStatus).await? {
        Response::Gateway(state) if json => print_json(&state),
        Response::Gateway(state) => {
            print_state(&state);
            Ok(())
        }
        r => Err(unexpected(r)),
    }
}

/// The one line `messenger status` prints for the gateway.
pub(crate) fn summary(g: &GatewayState) -> String {
    let link = if g.connection.connected {
        format!(
            "connected to {}",
            clean(g.connection.server.as_deref().unwrap_or("?"))
        )
    } else {
        "disconnected".to_owned()
    };
    format!(
        "site {}, {link}, {} remote names, {} published, {} delivered, {} failed",
        clean(&g.site),
        g.directory.names,
        g.counters.published,
        g.counters.delivered,
        g.counters.failed
    )
}

fn print_state(g: &GatewayState) {
    println!(
        "Gateway of site {} ({} mode)",
        clean(&g.site),
        clean(&g.mode)
    );
    let c = &g.connection;
    let since = c
        .since
        .map(|at| format!(" since {} UTC", when(at)))
        .unwrap_or_default();
    if c.connected {
        let server = clean(c.server.as_deref().unwrap_or("?"));
        println!("  cluster:     connected to {server}{since}");
    } else {
        let error = c
            .last_error
            .as_deref()
            .map(|e| format!(": {}", clean(e)))
            .unwrap_or_default();
        println!("  cluster:     disconnected{since}{error}");
    }
    match &g.stream {
        Some(s) => {
            let leader = s
                .leader
                .as_deref()
                .map(|l| format!(", leader {}", clean(l)))
                .unwrap_or_default();
            println!(
                "  stream:      {}: {} messages, {} bytes, {} replicas{leader}",
                clean(&s.name),
                s.messages,
                s.bytes,
                s.replicas
            );
            for p in &s.peers {
                let state = if p.current { "current" } else { "catching up" };
                println!("    {:<16} {state}, lag {}", clean(&p.name), p.lag);
            }
        }
        None => println!("  stream:      unknown (not connected)"),
    }
    println!("  consumers:");
    for k in &g.consumers {
        println!(
            "    {:<16} pending {}, ack pending {}, redelivered {}",
            clean(&k.name),
            k.num_pending,
            k.num_ack_pending,
            k.num_redelivered
        );
    }
    println!(
        "  directory:   {} names; {} of ours published, {} held first elsewhere",
        g.directory.names, g.directory.published, g.directory.conflicts
    );
    if let Some(e) = &g.directory.last_error {
        println!("    last error: {}", clean(e));
    }
    for s in &g.directory.sites {
        println!("    {:<16} {}", clean(&s.site), s.names);
    }
    let n = &g.counters;
    println!(
        "  counters:    published {}, delivered {}, failed {}, spooled {}",
        n.published, n.delivered, n.failed, n.spooled
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsend_control::types::{GatewayConnection, GatewayCounters, GatewayDirectory};

    #[test]
    fn the_summary_line_says_where_it_is_connected_and_cleans_peer_text() {
        let mut g = GatewayState {
            site: "NORTH".into(),
            mode: "proxy".into(),
            connection: GatewayConnection {
                connected: true,
                server: Some("192.0.2.1:4222 (n1\u{1b}[2J)".into()),
                since: Some(0),
                last_error: None,
            },
            directory: GatewayDirectory {
                names: 3,
                sites: vec![],
                ..GatewayDirectory::default()
            },
            counters: GatewayCounters {
                published: 4,
                delivered: 2,
                failed: 1,
                spooled: 0,
            },
            ..GatewayState::default()
        };
        let line = summary(&g);
        assert!(
            line.starts_with("site NORTH, connected to 192.0.2.1:4222"),
            "{line}"
        );
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(line.ends_with("3 remote names, 4 published, 2 delivered, 1 failed"));
        g.connection.connected = false;
        assert!(summary(&g).contains("disconnected"));
    }
}
