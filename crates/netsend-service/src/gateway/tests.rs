//! The gateway against a real `nats-server -js` on loopback (skipped with
//! a message when nats-server is not installed, failed instead under
//! `NETSEND_REQUIRE_INTEROP=1`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::config::{GatewayConfig, GatewayMode};
use crate::shutdown::Shutdown;

use super::link::{Link, DUPLICATE_WINDOW, STREAM_MAX_AGE};

/// A single-node JetStream server in a scratch directory, killed on drop.
pub(super) struct NatsServer {
    child: Child,
    /// Its client URL.
    pub(super) url: String,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts one, or None (with the reason printed) when nats-server is
    /// missing.
    pub(super) fn start() -> Option<Self> {
        Self::start_with(|_| String::new())
    }

    /// Starts one whose configuration file also holds what `extra` gives
    /// for the scratch directory (an `authorization` or `tls` block and the
    /// files it names), or None as [`NatsServer::start`].
    pub(super) fn start_with(extra: impl FnOnce(&std::path::Path) -> String) -> Option<Self> {
        if !installed("nats-server", "--version") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("nats.conf");
        let store = dir.path().join("js");
        std::fs::write(
            &conf,
            format!(
                "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {store:?} }}\n{}\n",
                extra(dir.path())
            ),
        )
        .unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Bounded wait until it listens, so a refusal seen by a test is
        // the server's answer and not its late start.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

/// Whether `program` runs (`probe` is its version flag); when not, the
/// test is skipped with a message, or fails under
/// `NETSEND_REQUIRE_INTEROP=1`.
pub(super) fn installed(program: &str, probe: &str) -> bool {
    let ok = Command::new(program)
        .arg(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("NETSEND_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "required for this test: {program}"
        );
        eprintln!("skipped: needs {program}");
    }
    ok
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway configuration for one site on `url`, one replica.
pub(super) fn config(site: &str, url: &str) -> GatewayConfig {
    GatewayConfig {
        site: site.into(),
        nats: vec![url.into()],
        credentials: None,
        user: None,
        password: None,
        token: None,
        tls_ca: None,
        tls_cert: None,
        tls_key: None,
        tls_required: false,
        mode: GatewayMode::Proxy,
        replicas: 1,
        domains: Vec::new(),
        stream: "NETSEND".into(),
        names_bucket: "netsend_names".into(),
        seen_bucket: "netsend_seen".into(),
    }
}

/// Waits (bounded) until `link` is connected.
pub(super) async fn connected(link: &Link) {
    for _ in 0..200 {
        if link.connected() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the link did not connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_connects_makes_the_stream_and_publishes_with_dedup() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let link = Link::new(config("north", &server.url));
    assert!(!link.connected());
    assert!(link.jetstream().is_none());
    assert!(matches!(
        link.publish("netsend.msg.SOUTH".into(), "x".into(), "y".into())
            .await,
        Err(super::link::LinkError::NotConnected)
    ));
    let shutdown = Shutdown::new();
    shutdown.spawn(link.clone().run(shutdown.clone()));
    connected(&link).await;
    let js = link.jetstream().unwrap();
    let mut stream = js.get_stream("NETSEND").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.subjects, ["netsend.>"]);
    assert_eq!(info.config.max_age, STREAM_MAX_AGE);
    assert_eq!(info.config.duplicate_window, DUPLICATE_WINDOW);
    assert_eq!(
        info.config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    js.get_key_value("netsend_names").await.unwrap();
    js.get_key_value("netsend_seen").await.unwrap();

    let first = link
        .publish("netsend.msg.SOUTH".into(), "NORTH-1".into(), "hello".into())
        .await
        .unwrap();
    assert!(!first.duplicate);
    let again = link
        .publish("netsend.msg.SOUTH".into(), "NORTH-1".into(), "hello".into())
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.sequence, first.sequence);
    let other = link
        .publish("netsend.msg.SOUTH".into(), "NORTH-2".into(), "hello".into())
        .await
        .unwrap();
    assert_eq!(other.sequence, first.sequence + 1);

    shutdown.request();
    shutdown.finish().await;
    assert!(!link.connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_waits_for_a_server_that_comes_late() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let link = Link::new(config("north", &format!("nats://127.0.0.1:{port}")));
    let shutdown = Shutdown::new();
    shutdown.spawn(link.clone().run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!link.connected());
    // Nothing listens: a stop is not held up by the retries.
    shutdown.request();
    tokio::time::timeout(Duration::from_secs(10), shutdown.finish())
        .await
        .expect("the link stops at the stop");
}
