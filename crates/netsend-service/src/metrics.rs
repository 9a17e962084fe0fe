//! The service's metrics, in one place: every counter, gauge and histogram
//! the `/metrics` endpoint serves (`[metrics] listen`), fed by the
//! components that see the events (the receive paths, the send path, the
//! delivery channels, the control socket, the drop counters) and, for
//! what is a state rather than an event (the outgoing queue, the names),
//! set by the endpoint's driver just before each scrape. Encoded by
//! `prometheus-client` as OpenMetrics text.
//!
//! This room imports no other: components hand it label values.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// One label: its name and value.
pub type Label = [(&'static str, &'static str); 1];

/// Two labels.
pub type Labels2 = [(&'static str, &'static str); 2];

/// Counts by one label.
pub type Counters = Family<Label, Counter>;

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric of the service.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    received: Counters,
    sent: Counters,
    deliveries: Family<Labels2, Counter>,
    receive_to_commit: Histogram,
    send_seconds: Histogram,
    control_clients: Gauge,
    queue_depth: Gauge,
    names: Family<Label, Gauge>,
    gateway: Counters,
}

/// Latency buckets from 1 ms to about 33 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

impl Metrics {
    /// Every metric at zero; `drops` is the drop counters' family, which
    /// the admission component owns and counts in (`reason` label).
    pub fn new(drops: Counters) -> Self {
        let mut registry = Registry::with_prefix("netsend");
        let received = Counters::default();
        registry.register(
            "messages_received",
            "Messages received and committed to the inbox, by transport (session, mailslot)",
            received.clone(),
        );
        let sent = Counters::default();
        registry.register(
            "messages_sent",
            "Messages sent and acknowledged by their recipient (session) or put on the wire (mailslot broadcast datagrams)",
            sent.clone(),
        );
        registry.register(
            "drops",
            "Messages, sessions and name demands dropped, by reason",
            drops,
        );
        let deliveries = Family::<Labels2, Counter>::default();
        registry.register(
            "deliveries",
            "Stored messages handed on, by delivery channel and outcome",
            deliveries.clone(),
        );
        let receive_to_commit = Histogram::new(latency_buckets());
        registry.register(
            "receive_to_commit_seconds",
            "From a message's last byte received to its inbox commit",
            receive_to_commit.clone(),
        );
        let send_seconds = Histogram::new(latency_buckets());
        registry.register(
            "send_seconds",
            "Directed sends, one session each: from connecting to the recipient's acknowledgement (failures included)",
            send_seconds.clone(),
        );
        let control_clients = Gauge::default();
        registry.register(
            "control_clients",
            "Clients connected to the control socket",
            control_clients.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Messages in the outgoing queue waiting for delivery",
            queue_depth.clone(),
        );
        let names = Family::<Label, Gauge>::default();
        registry.register(
            "names",
            "Aliases by network state (registering, registered, conflict, local)",
            names.clone(),
        );
        let gateway = Counters::default();
        registry.register(
            "gateway_messages",
            "Site gateway messages by outcome (published, publish_failed, delivered, duplicate, retried, failed)",
            gateway.clone(),
        );
        Self {
            gateway,
            registry,
            received,
            sent,
            deliveries,
            receive_to_commit,
            send_seconds,
            control_clients,
            queue_depth,
            names,
        }
    }

    /// A message committed, `transport` it came by, `seconds` after its
    /// last byte arrived.
    pub fn received(&self, transport: &'static str, seconds: f64) {
        self.received
            .get_or_create(&[("transport", transport)])
            .inc();
        self.receive_to_commit.observe(seconds);
    }

    /// `n` messages sent by `transport`.
    pub fn sent(&self, transport: &'static str, n: u64) {
        self.sent
            .get_or_create(&[("transport", transport)])
            .inc_by(n);
    }

    /// A directed send finished (either way) after `seconds`.
    pub fn send_took(&self, seconds: f64) {
        self.send_seconds.observe(seconds);
    }

    /// A delivery channel finished with a message: `outcome` is the
    /// channel's word (`shown`, `written`, `ran`, `forwarded`, `failed`,
    /// `dropped`, ...).
    pub fn delivered(&self, channel: &'static str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&[("channel", channel), ("outcome", outcome)])
            .inc();
    }

    /// A site gateway message had `outcome` (`published`, `publish_failed`,
    /// `delivered`, `duplicate`, `retried`, `failed`).
    pub fn gateway(&self, outcome: &'static str) {
        self.gateway.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// A control client connected; it is counted until the guard drops.
    pub fn control_client(self: &std::sync::Arc<Self>) -> ControlClient {
        self.control_clients.inc();
        ControlClient(self.clone())
    }

    /// Sets the states read at scrape time: the outgoing queue's depth and
    /// how many aliases are in each state (every state listed).
    pub fn set_state(&self, queue_depth: u64, names: &[&'static str]) {
        self.queue_depth
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        for state in ["registering", "registered", "conflict", "local"] {
            let n = names.iter().filter(|s| **s == state).count();
            self.names
                .get_or_create(&[("state", state)])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Every metric as OpenMetrics text (ending `# EOF`).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Where a delivery channel counts its outcomes: the service's metrics,
/// or nowhere (a channel built alone, in a test).
#[derive(Debug, Clone, Default)]
pub struct DeliveryCounter(Option<std::sync::Arc<Metrics>>);

impl DeliveryCounter {
    /// Counting in `metrics`.
    pub fn new(metrics: std::sync::Arc<Metrics>) -> Self {
        Self(Some(metrics))
    }

    /// One message through `channel`, with `outcome`.
    pub fn record(&self, channel: &'static str, outcome: &'static str) {
        if let Some(m) = &self.0 {
            m.delivered(channel, outcome);
        }
    }
}

/// One connected control client (see [`Metrics::control_client`]).
#[derive(Debug)]
pub struct ControlClient(std::sync::Arc<Metrics>);

impl Drop for ControlClient {
    fn drop(&mut self) {
        self.0.control_clients.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_and_states_appear_in_the_text() {
        let drops = Counters::default();
        let m = Arc::new(Metrics::new(drops.clone()));
        m.received("session", 0.002);
        m.sent("mailslot", 3);
        m.delivered("hooks", "ran");
        drops.get_or_create(&[("reason", "source_rate")]).inc_by(2);
        m.set_state(4, &["registered", "registered", "local"]);
        let client = m.control_client();
        let text = m.encode();
        for line in [
            "netsend_messages_received_total{transport=\"session\"} 1",
            "netsend_messages_sent_total{transport=\"mailslot\"} 3",
            "netsend_deliveries_total{channel=\"hooks\",outcome=\"ran\"} 1",
            "netsend_drops_total{reason=\"source_rate\"} 2",
            "netsend_queue_depth 4",
            "netsend_names{state=\"registered\"} 2",
            "netsend_names{state=\"conflict\"} 0",
            "netsend_control_clients 1",
            "netsend_receive_to_commit_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        drop(client);
        assert!(m.encode().contains("netsend_control_clients 0"));
    }
}
