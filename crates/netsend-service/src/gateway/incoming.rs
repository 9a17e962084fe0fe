//! The receiving side: a durable pull consumer `site-<SITE>` on this
//! site's subject; each message is delivered to its name here through the
//! normal send path (never back over the backbone), recorded in the
//! delivered-ids bucket and only then acknowledged, so a redelivery after
//! a lost acknowledgement or a restart is acknowledged without being shown
//! again. Each delivery carries a delivery tag derived from the message id,
//! which covers a crash between the recipient's reply and that record: a
//! netsend recipient acknowledges the redelivery as a repeat.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::AckKind;
use futures_lite::StreamExt;
use netsend_proto::delivery_tag::DeliveryTag;
use netsend_proto::display::LogSafe;
use netsend_proto::sites::{msg_subject, receipt_subject, SiteName};
use netsend_wire::site::{SiteMessage, SiteReceipt};
use netsend_wire::status::NetApiStatus;

use super::Gateway;
use crate::outbound::send::Sites;
use crate::shutdown::Shutdown;

/// How long JetStream waits for an acknowledgement before it redelivers:
/// more than the longest local delivery (resolution and the send deadline).
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(120);
/// Deliveries of one message at most; then JetStream stops trying (about a
/// day of retries at the longest backoff).
pub(crate) const MAX_DELIVER: i64 = 1500;
/// Longest pause before a message that failed for now is offered again.
const NAK_MOST: Duration = Duration::from_secs(60);
/// Pause before the consumer is set up again after the link or the
/// consumer failed.
const AGAIN: Duration = Duration::from_secs(1);

/// What a consumer reads: this site's messages, or the receipts for
/// messages sent from this site that another site gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `site-<SITE>` on `netsend.msg.<SITE>`.
    Messages,
    /// `receipts-<SITE>` on `netsend.receipt.<SITE>`.
    Receipts,
}

/// How a delivered message ended.
enum Outcome {
    /// Delivered now or before: acknowledge.
    Done,
    /// Failed for now: offer it again after this pause.
    Later(Duration),
    /// Will never be delivered (unreadable, or the name is gone): stop.
    Never,
}

/// The pause before the `delivered`-th offer of a message is repeated:
/// doubling from one second up to [`NAK_MOST`].
fn backoff(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.clamp(1, 7) - 1).unwrap_or(0);
    Duration::from_secs(1u64 << exponent).min(NAK_MOST)
}

/// The delivered-ids bucket's key of a message id: its bytes in hex (KV
/// keys take fewer characters than an id may hold).
fn seen_key(msg_id: &str) -> String {
    msg_id.bytes().map(|b| format!("{b:02x}")).collect()
}

impl Gateway {
    /// Consumes this site's messages until the stop, setting the consumer
    /// up again whenever the link comes back.
    pub(crate) async fn consume(self, shutdown: Shutdown) {
        let receipts = self.clone();
        let stop = shutdown.clone();
        shutdown.spawn(async move { receipts.consume_kind(Kind::Receipts, stop).await });
        self.consume_kind(Kind::Messages, shutdown).await;
    }

    async fn consume_kind(self, kind: Kind, shutdown: Shutdown) {
        loop {
            if shutdown.is_stopping() {
                return;
            }
            if let Err(e) = self.consume_once(kind, &shutdown).await {
                tracing::warn!(event = "gateway_deliver", reason = %LogSafe(&e), "the site consumer stopped; setting it up again");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(AGAIN) => {}
            }
        }
    }

    async fn consume_once(&self, kind: Kind, shutdown: &Shutdown) -> Result<(), String> {
        let Some(js) = self.link.jetstream() else {
            return Ok(());
        };
        let config = &self.config;
        let stream = js
            .get_stream(config.stream.as_str())
            .await
            .map_err(|e| e.to_string())?;
        let (name, filter_subject) = match kind {
            Kind::Messages => (format!("site-{}", self.site), msg_subject(&self.site)),
            Kind::Receipts => (
                format!("receipts-{}", self.site),
                receipt_subject(&self.site),
            ),
        };
        let consumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    // One filter subject: 2.9 ignores `filter_subjects`.
                    filter_subject,
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_deliver: MAX_DELIVER,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        let seen = js
            .get_key_value(config.seen_bucket.as_str())
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            };
            let (delivered, lag) = match message.info() {
                Ok(info) => (
                    info.delivered,
                    i128::from(crate::store::now_ms())
                        - info.published.unix_timestamp_nanos() / 1_000_000,
                ),
                Err(_) => (1, 0),
            };
            let outcome = self
                .deliver(kind, &seen, &message.payload, delivered, lag)
                .await;
            let acked = match outcome {
                Outcome::Done => message.double_ack().await,
                Outcome::Later(pause) => message.ack_with(AckKind::Nak(Some(pause))).await,
                Outcome::Never => message.ack_with(AckKind::Term).await,
            };
            if let Err(e) = acked {
                // Unacknowledged, it comes again after ack_wait; the
                // delivered-ids record keeps it from being shown twice.
                tracing::warn!(event = "gateway_deliver", reason = %LogSafe(&e.to_string()), "acknowledgement not confirmed");
            }
        }
    }

    /// One offer of a message (or a receipt) from another site.
    async fn deliver(
        &self,
        kind: Kind,
        seen: &async_nats::jetstream::kv::Store,
        payload: &[u8],
        delivered: i64,
        lag_ms: i128,
    ) -> Outcome {
        let offer = match Offer::parse(kind, payload, &self.outbound.config.get().computer_name) {
            Ok(offer) => offer,
            Err(e) => {
                self.metrics.gateway("failed");
                tracing::warn!(event = "gateway_deliver", reason = %LogSafe(&e), "unreadable payload from another site dropped");
                return Outcome::Never;
            }
        };
        let key = seen_key(&offer.key);
        match seen.get(key.as_str()).await {
            Ok(Some(_)) => {
                self.metrics.gateway("duplicate");
                tracing::info!(event = "gateway_deliver", msg_id = %LogSafe(&offer.key), delivered, "already delivered: acknowledged again, not shown");
                return Outcome::Done;
            }
            Ok(None) => {}
            Err(e) => {
                self.metrics.gateway("retried");
                tracing::warn!(event = "gateway_deliver", reason = %LogSafe(&e.to_string()), "delivered-ids bucket unreadable; trying later");
                return Outcome::Later(backoff(delivered));
            }
        }
        let letter = crate::outbound::queue::Letter {
            to: &offer.to,
            from: &offer.from,
            text: &offer.text,
        };
        // Tagged with the message id: if we crash after the recipient's
        // reply and before the record below, the redelivery reaches a
        // netsend recipient as a repeat it acknowledges without showing.
        let tag = DeliveryTag::for_site_message(&offer.key);
        let sent = self.send(letter, Sites::Local, Some(tag)).await;
        match sent {
            Ok(report) => {
                // Recorded before the acknowledgement: a redelivery finds it.
                if let Err(e) = seen
                    .create(key.as_str(), bytes::Bytes::from(offer.origin.clone()))
                    .await
                {
                    tracing::warn!(event = "gateway_deliver", msg_id = %LogSafe(&offer.key), reason = %LogSafe(&e.to_string()), "delivered id not recorded");
                }
                self.metrics.gateway("delivered");
                tracing::info!(
                    event = "gateway_deliver",
                    msg_id = %LogSafe(&offer.key),
                    origin = %LogSafe(&offer.origin),
                    from = %LogSafe(&offer.from),
                    to = %LogSafe(&offer.to),
                    peer = %LogSafe(&report.address),
                    delivered,
                    lag_ms,
                    receipt = kind == Kind::Receipts,
                    "message from another site delivered"
                );
                Outcome::Done
            }
            Err(e) if e.status() == NetApiStatus::NERR_NAME_NOT_FOUND => {
                self.metrics.gateway("failed");
                tracing::warn!(
                    event = "gateway_deliver",
                    msg_id = %LogSafe(&offer.key),
                    origin = %LogSafe(&offer.origin),
                    to = %LogSafe(&offer.to),
                    reason = %LogSafe(&e),
                    "the name is not at this site: message given up"
                );
                if let Some(receipt) = offer.receipt {
                    self.send_receipt(&offer.origin, receipt, e.status()).await;
                }
                Outcome::Never
            }
            Err(e) => {
                self.metrics.gateway("retried");
                let pause = backoff(delivered);
                tracing::info!(
                    event = "gateway_deliver",
                    msg_id = %LogSafe(&offer.key),
                    to = %LogSafe(&offer.to),
                    reason = %LogSafe(&e),
                    delivered,
                    retry_in = ?pause,
                    "delivery failed for now; offered again later"
                );
                Outcome::Later(pause)
            }
        }
    }

    /// Tells the origin site that its message was given up here: a receipt
    /// on `netsend.receipt.<ORIGIN>`, with an id of its own (dedup'ed like
    /// any publish). Logged when it cannot be sent.
    async fn send_receipt(&self, origin: &str, mut receipt: SiteReceipt, status: NetApiStatus) {
        let Ok(origin) = SiteName::new(origin) else {
            return;
        };
        receipt.status = status.0;
        receipt.site = self.site.to_string();
        let Ok(payload) = receipt.to_bytes() else {
            return;
        };
        let id = format!("receipt-{}", receipt.msg_id);
        let published = self
            .link
            .publish(receipt_subject(&origin), id, bytes::Bytes::from(payload))
            .await;
        if let Err(e) = published {
            tracing::warn!(event = "gateway_deliver", msg_id = %LogSafe(&receipt.msg_id), origin = %origin, reason = %LogSafe(&e.to_string()), "receipt not sent");
        }
    }
}

/// A message or receipt from another site, as delivered here.
struct Offer {
    /// The dedup key (the message id; a receipt's own id).
    key: String,
    /// The site it came from.
    origin: String,
    /// Whom it is for, who it is from, and the text.
    to: String,
    from: String,
    text: String,
    /// For a message: the receipt to send its origin if the name is gone.
    receipt: Option<SiteReceipt>,
}

impl Offer {
    /// Reads `payload` as `kind`; a receipt becomes a notice from
    /// `computer` to the original sender.
    fn parse(
        kind: Kind,
        payload: &[u8],
        computer: &str,
    ) -> Result<Self, netsend_wire::DecodeError> {
        match kind {
            Kind::Messages => {
                let m = SiteMessage::parse(payload)?;
                let receipt = SiteReceipt {
                    msg_id: m.msg_id.clone(),
                    site: String::new(),
                    from: m.from.clone(),
                    to: m.to.clone(),
                    status: 0,
                };
                Ok(Self {
                    key: m.msg_id,
                    origin: m.origin,
                    to: m.to,
                    from: m.from,
                    text: m.text,
                    receipt: Some(receipt),
                })
            }
            Kind::Receipts => {
                let r = SiteReceipt::parse(payload)?;
                let text = netsend_proto::sites::receipt_text(&r.to, &r.site, r.status);
                Ok(Self {
                    key: format!("receipt-{}", r.msg_id),
                    origin: r.site,
                    to: r.from,
                    from: computer.to_owned(),
                    text,
                    receipt: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_a_minute() {
        let pauses: Vec<u64> = (0..10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(pauses, [1, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn seen_keys_are_kv_safe() {
        assert_eq!(seen_key("N-1"), "4e2d31");
        let key = seen_key("NORTH-q1-\u{7e}!");
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
