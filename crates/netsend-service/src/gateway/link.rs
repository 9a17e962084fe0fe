//! The gateway's connection to the NATS cluster: made in the background
//! with retries (start and local delivery never wait for it), and at every
//! (re)connection the stream and the KV buckets are made sure of, with
//! only the fields nats-server 2.9 knows.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, publish::PublishAck, stream};
use netsend_proto::display::LogSafe;
use netsend_proto::sites::STREAM_SUBJECTS;
use tokio::sync::mpsc;

use crate::config::GatewayConfig;
use crate::shutdown::Shutdown;

/// How long one publish waits for JetStream's acknowledgement.
pub(crate) const PUBLISH_WAIT: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// First and longest pause between connection attempts.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MOST: Duration = Duration::from_secs(30);
/// How often the stream and buckets are tried again while they could not
/// be made (JetStream electing its leaders, a cluster short of nodes).
const ENSURE_AGAIN: Duration = Duration::from_secs(2);
/// The stream's age limit: what is not delivered in a day is dropped.
pub(crate) const STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The stream's dedup window: a publish retried with the same id within
/// it is stored once (longer than any retry of ours).
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// Entry age limit of the name directory's bucket: a site re-puts its live
/// names well within it (a third), so names of a site that went away fade.
pub(crate) const NAMES_MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Entry age limit of the delivered-ids bucket: longer than a message can
/// stay in the stream, so a redelivery always finds its record.
pub(crate) const SEEN_MAX_AGE: Duration = Duration::from_secs(48 * 3600);

/// Why a publish failed. A timeout does not mean "not stored": retry with
/// the same message id.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    /// Not connected to the cluster now.
    #[error("not connected to the NATS cluster")]
    NotConnected,
    /// No acknowledgement within the bound.
    #[error("no acknowledgement from JetStream within {0:?}")]
    Timeout(Duration),
    /// JetStream refused or failed the publish.
    #[error("publish failed: {0}")]
    Publish(#[from] async_nats::jetstream::context::PublishError),
}

/// The connection in force, once the stream and buckets are made sure of.
#[derive(Default)]
struct State {
    client: Option<async_nats::Client>,
    jetstream: Option<jetstream::Context>,
}

/// The gateway's link to the cluster (cheap to clone).
#[derive(Clone)]
pub(crate) struct Link {
    config: Arc<GatewayConfig>,
    state: Arc<RwLock<State>>,
    history: Arc<std::sync::Mutex<History>>,
}

/// Since when the link is up or down, and why it went down last.
#[derive(Default)]
struct History {
    up: bool,
    since_ms: Option<i64>,
    last_error: Option<String>,
}

impl Link {
    /// A link for `config`, not yet connected; [`Link::run`] connects it.
    pub(crate) fn new(config: GatewayConfig) -> Self {
        Self {
            config: Arc::new(config),
            state: Arc::default(),
            history: Arc::default(),
        }
    }

    /// Records that the link came up, or went down for `error`.
    fn mark(&self, error: Option<String>) {
        let mut h = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let up = error.is_none();
        if h.up != up || h.since_ms.is_none() {
            h.since_ms = Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
            );
        }
        h.up = up;
        if error.is_some() {
            h.last_error = error;
        }
    }

    /// The connection's state for `gateway status` (the server is filled
    /// in by the caller from the client).
    pub(crate) fn connection(&self) -> netsend_control::types::GatewayConnection {
        let h = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let connected = self.connected();
        netsend_control::types::GatewayConnection {
            connected,
            server: None,
            since: h.since_ms,
            last_error: if connected {
                None
            } else {
                h.last_error.clone()
            },
        }
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, state: State) {
        *self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = state;
    }

    /// Whether the link is connected and the stream is there.
    pub(crate) fn connected(&self) -> bool {
        let state = self.state();
        state.jetstream.is_some()
            && state
                .client
                .as_ref()
                .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
    }

    /// The JetStream context, while connected.
    pub(crate) fn jetstream(&self) -> Option<jetstream::Context> {
        if self.connected() {
            self.state().jetstream.clone()
        } else {
            None
        }
    }

    /// Publishes `payload` on `subject` with the dedup id `msg_id` and waits
    /// (at most [`PUBLISH_WAIT`]) for JetStream's acknowledgement; a
    /// duplicate's acknowledgement (`duplicate: true`) is a success too.
    pub(crate) async fn publish(
        &self,
        subject: String,
        msg_id: String,
        payload: bytes::Bytes,
    ) -> Result<PublishAck, LinkError> {
        let js = self.jetstream().ok_or(LinkError::NotConnected)?;
        let publish = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(msg_id);
        let acked = async {
            let future = js.send_publish(subject, publish).await?;
            future.await
        };
        match tokio::time::timeout(PUBLISH_WAIT, acked).await {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(e)) => Err(LinkError::Publish(e)),
            Err(_) => Err(LinkError::Timeout(PUBLISH_WAIT)),
        }
    }

    async fn options(
        &self,
        events: mpsc::UnboundedSender<async_nats::Event>,
    ) -> std::io::Result<async_nats::ConnectOptions> {
        let c = &self.config;
        let mut options = match &c.credentials {
            Some(path) => {
                async_nats::ConnectOptions::new()
                    .credentials_file(path)
                    .await?
            }
            None => async_nats::ConnectOptions::new(),
        };
        if let (Some(user), Some(password)) = (&c.user, &c.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &c.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &c.tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options
            .require_tls(c.tls_required)
            .name(format!("netsend-gateway-{}", c.site.to_ascii_uppercase()))
            .connection_timeout(CONNECT_WAIT)
            .max_reconnects(None)
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    let _ = events.send(event);
                }
            }))
    }

    /// Connects, keeps the connection, and makes sure of the stream and the
    /// buckets at every (re)connection, until the stop.
    pub(crate) async fn run(self, shutdown: Shutdown) {
        let mut pause = RETRY_FIRST;
        loop {
            let (tx, mut events) = mpsc::unbounded_channel();
            let connect = async {
                let options = self.options(tx).await?;
                options
                    .connect(self.config.nats.as_slice())
                    .await
                    .map_err(std::io::Error::other)
            };
            let client = tokio::select! {
                () = shutdown.cancelled() => return,
                c = connect => c,
            };
            let client = match client {
                Ok(client) => client,
                Err(e) => {
                    self.mark(Some(e.to_string()));
                    tracing::warn!(
                        event = "gateway_link",
                        servers = ?self.config.nats,
                        reason = %LogSafe(&e.to_string()),
                        retry_in = ?pause,
                        "cannot reach the NATS cluster"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(RETRY_MOST);
                    continue;
                }
            };
            pause = RETRY_FIRST;
            self.mark(None);
            let js = jetstream::new(client.clone());
            let mut ensured = self.ensure(&js).await;
            self.set(State {
                client: Some(client.clone()),
                jetstream: ensured.then(|| js.clone()),
            });
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => {
                        self.set(State::default());
                        return;
                    }
                    () = tokio::time::sleep(ENSURE_AGAIN), if !ensured => {
                        ensured = self.ensure(&js).await;
                    }
                    event = events.recv() => match event {
                        Some(async_nats::Event::Connected) => {
                            self.mark(None);
                            tracing::info!(event = "gateway_link", "reconnected to the NATS cluster");
                            ensured = self.ensure(&js).await;
                        }
                        Some(async_nats::Event::Disconnected) => {
                            self.mark(Some("lost the connection".to_owned()));
                            tracing::warn!(event = "gateway_link", "lost the NATS cluster; reconnecting");
                        }
                        Some(async_nats::Event::Closed) | None => break,
                        Some(other) => tracing::debug!(
                            event = "gateway_link",
                            what = %LogSafe(&other.to_string()),
                            "NATS client event"
                        ),
                    }
                }
                self.set(State {
                    client: Some(client.clone()),
                    jetstream: ensured.then(|| js.clone()),
                });
            }
            self.set(State::default());
        }
    }

    /// Makes sure the stream and both buckets exist; false (logged) when
    /// JetStream cannot say so now.
    async fn ensure(&self, js: &jetstream::Context) -> bool {
        let c = &self.config;
        let stream = stream::Config {
            name: c.stream.clone(),
            subjects: STREAM_SUBJECTS.iter().map(|s| (*s).to_owned()).collect(),
            storage: stream::StorageType::File,
            num_replicas: c.replicas,
            max_age: STREAM_MAX_AGE,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        if let Err(e) = js.get_or_create_stream(stream).await {
            tracing::warn!(
                event = "gateway_link",
                stream = %LogSafe(&c.stream),
                reason = %LogSafe(&e.to_string()),
                "the JetStream stream is not ready"
            );
            return false;
        }
        for (bucket, max_age) in [
            (&c.names_bucket, NAMES_MAX_AGE),
            (&c.seen_bucket, SEEN_MAX_AGE),
        ] {
            // The bucket's stream made by hand, as `create_key_value`
            // would make it: that call first reads the account info, whose
            // 2.9 form lacks fields async-nats 0.49 requires.
            let config = stream::Config {
                name: format!("KV_{bucket}"),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                max_age,
                storage: stream::StorageType::File,
                num_replicas: c.replicas,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                ..Default::default()
            };
            let made = match js.get_or_create_stream(config).await {
                Ok(_) => js
                    .get_key_value(bucket.as_str())
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = made {
                tracing::warn!(
                    event = "gateway_link",
                    bucket = %LogSafe(bucket),
                    reason = %LogSafe(&e),
                    "a JetStream KV bucket is not ready"
                );
                return false;
            }
        }
        tracing::info!(
            event = "gateway_link",
            stream = %LogSafe(&c.stream),
            replicas = c.replicas,
            "connected to the NATS cluster; stream and buckets ready"
        );
        true
    }
}
