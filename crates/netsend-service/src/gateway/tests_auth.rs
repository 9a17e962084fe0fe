//! The gateway's credentials and TLS options against a real nats-server
//! that asks for them (skipped with a message when nats-server or openssl
//! is missing, failed instead under `NETSEND_REQUIRE_INTEROP=1`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::config::GatewayConfig;
use crate::shutdown::Shutdown;

use super::link::Link;
use super::tests::{config, connected, installed, NatsServer};

/// Runs `link` until it publishes once, then stops it (bounded).
async fn publishes(link: Link) {
    let shutdown = Shutdown::new();
    shutdown.spawn(link.clone().run(shutdown.clone()));
    connected(&link).await;
    assert!(link.connection().connected);
    let ack = link
        .publish("netsend.msg.SOUTH".into(), "NORTH-1".into(), "hi".into())
        .await
        .unwrap();
    assert!(!ack.duplicate);
    stop(shutdown).await;
}

/// Runs `link` until its connection state carries an error, checks that
/// it never connected, stops it (bounded) and gives the error.
async fn refused(link: Link) -> String {
    let shutdown = Shutdown::new();
    shutdown.spawn(link.clone().run(shutdown.clone()));
    let mut error = None;
    for _ in 0..200 {
        let state = link.connection();
        assert!(!state.connected, "connected without the right credentials");
        if let Some(e) = state.last_error {
            error = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!link.connected());
    stop(shutdown).await;
    error.expect("the connection state carries no error")
}

/// Stops a link; the stop is not held up by its retries.
async fn stop(shutdown: Shutdown) {
    shutdown.request();
    tokio::time::timeout(Duration::from_secs(10), shutdown.finish())
        .await
        .expect("the link stops at the stop");
}

fn authorization(block: &'static str) -> impl FnOnce(&Path) -> String {
    move |_| format!("authorization {{ {block} }}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_authenticates_with_user_and_password() {
    let Some(server) =
        NatsServer::start_with(authorization("user: north, password: \"s3cret pw\""))
    else {
        return;
    };
    let with = |user: Option<&str>, password: Option<&str>| {
        let mut c = config("north", &server.url);
        c.user = user.map(str::to_owned);
        c.password = password.map(str::to_owned);
        Link::new(c)
    };
    publishes(with(Some("north"), Some("s3cret pw"))).await;
    for link in [with(Some("north"), Some("wrong")), with(None, None)] {
        let error = refused(link).await;
        assert!(
            error.to_ascii_lowercase().contains("authorization"),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_authenticates_with_a_token() {
    let Some(server) = NatsServer::start_with(authorization("token: \"t0ken-north\"")) else {
        return;
    };
    let with = |token: Option<&str>| {
        let mut c = config("north", &server.url);
        c.token = token.map(str::to_owned);
        Link::new(c)
    };
    publishes(with(Some("t0ken-north"))).await;
    for link in [with(Some("t0ken-south")), with(None)] {
        let error = refused(link).await;
        assert!(
            error.to_ascii_lowercase().contains("authorization"),
            "{error}"
        );
    }
}
