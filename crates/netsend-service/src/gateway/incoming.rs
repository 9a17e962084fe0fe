//! The receiving side: a durable pull consumer `site-<SITE>` on this
//! site's subject; each message is delivered to its name here through the
//! normal send path (never back over the backbone), recorded in the
//! delivered-ids bucket and only then acknowledged, so a redelivery after
//! a lost acknowledgement or a restart is acknowledged without being shown
//! again.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::AckKind;
use futures_lite::StreamExt;
use netsend_proto::display::LogSafe;
use netsend_proto::sites::msg_subject;
use netsend_wire::site::SiteMessage;
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
        loop {
            if shutdown.is_stopping() {
                return;
            }
            if let Err(e) = self.consume_once(&shutdown).await {
                tracing::warn!(event = "gateway_deliver", reason = %LogSafe(&e), "the site consumer stopped; setting it up again");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(AGAIN) => {}
            }
        }
    }

    async fn consume_once(&self, shutdown: &Shutdown) -> Result<(), String> {
        let Some(js) = self.link.jetstream() else {
            return Ok(());
        };
        let config = &self.config;
        let stream = js
            .get_stream(config.stream.as_str())
            .await
            .map_err(|e| e.to_string())?;
        let name = format!("site-{}", self.site);
        let consumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    // One filter subject: 2.9 ignores `filter_subjects`.
                    filter_subject: msg_subject(&self.site),
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
            let outcome = self.deliver(&seen, &message.payload, delivered, lag).await;
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

    /// One offer of a message from another site.
    async fn deliver(
        &self,
        seen: &async_nats::jetstream::kv::Store,
        payload: &[u8],
        delivered: i64,
        lag_ms: i128,
    ) -> Outcome {
        let message = match SiteMessage::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                self.metrics.gateway("failed");
                tracing::warn!(event = "gateway_deliver", reason = %LogSafe(&e), "unreadable message from another site dropped");
                return Outcome::Never;
            }
        };
        let key = seen_key(&message.msg_id);
        match seen.get(key.as_str()).await {
            Ok(Some(_)) => {
                self.metrics.gateway("duplicate");
                tracing::info!(event = "gateway_deliver", msg_id = %LogSafe(&message.msg_id), delivered, "already delivered: acknowledged again, not shown");
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
            to: &message.to,
            from: &message.from,
            text: &message.text,
        };
        let sent = self.send(letter, Sites::Local).await;
        match sent {
            Ok(report) => {
                // Recorded before the acknowledgement: a redelivery finds it.
                if let Err(e) = seen
                    .create(key.as_str(), bytes::Bytes::from(message.origin.clone()))
                    .await
                {
                    tracing::warn!(event = "gateway_deliver", msg_id = %LogSafe(&message.msg_id), reason = %LogSafe(&e.to_string()), "delivered id not recorded");
                }
                self.metrics.gateway("delivered");
                tracing::info!(
                    event = "gateway_deliver",
                    msg_id = %LogSafe(&message.msg_id),
                    origin = %LogSafe(&message.origin),
                    from = %LogSafe(&message.from),
                    to = %LogSafe(&message.to),
                    peer = %LogSafe(&report.address),
                    delivered,
                    lag_ms,
                    "message from another site delivered"
                );
                Outcome::Done
            }
            Err(e) if e.status() == NetApiStatus::NERR_NAME_NOT_FOUND => {
                self.metrics.gateway("failed");
                tracing::warn!(
                    event = "gateway_deliver",
                    msg_id = %LogSafe(&message.msg_id),
                    origin = %LogSafe(&message.origin),
                    to = %LogSafe(&message.to),
                    reason = %LogSafe(&e),
                    "the name is not at this site: message given up"
                );
                Outcome::Never
            }
            Err(e) => {
                self.metrics.gateway("retried");
                let pause = backoff(delivered);
                tracing::info!(
                    event = "gateway_deliver",
                    msg_id = %LogSafe(&message.msg_id),
                    to = %LogSafe(&message.to),
                    reason = %LogSafe(&e),
                    delivered,
                    retry_in = ?pause,
                    "delivery failed for now; offered again later"
                );
                Outcome::Later(pause)
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
