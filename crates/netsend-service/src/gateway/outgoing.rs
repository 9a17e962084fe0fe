//! The sending side: a message for a name at another site is published on
//! that site's subject with its dedup id, retried with the same id within
//! the sender's patience; one that came by SMB is first committed to the
//! outgoing queue, so it waits there (and its retries publish with the
//! same id) while the cluster cannot be reached.

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use netsend_proto::display::LogSafe;
use netsend_proto::message::Message;
use netsend_proto::sites::{msg_subject, SiteName};
use netsend_wire::name::NetbiosName;
use netsend_wire::site::SiteMessage;

use super::link::LinkError;
use super::Gateway;
use crate::outbound::send::{SendFailure, Sites};
use crate::outbound::{Backbone, Carry};

/// How long a publish is retried (same id) before the message is left to
/// the outgoing queue: within an SMB sender's patience.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);
/// First and longest pause between publish attempts.
const PAUSE_FIRST: Duration = Duration::from_millis(250);
const PAUSE_MOST: Duration = Duration::from_secs(2);

impl Backbone for Gateway {
    fn site_of(&self, name: &NetbiosName) -> Option<SiteName> {
        self.directory.lookup(name).map(|r| r.site)
    }

    fn site(&self) -> &SiteName {
        &self.site
    }

    fn carry(
        &self,
        site: SiteName,
        letter: Carry,
    ) -> Pin<Box<dyn Future<Output = Result<(), SendFailure>> + Send + '_>> {
        Box::pin(self.publish_message(site, letter))
    }
}

impl Gateway {
    /// Publishes `letter` for `site`, retrying with the same id until
    /// JetStream acknowledges it (a duplicate's acknowledgement included)
    /// or [`PATIENCE`] runs out; not connected fails at once.
    async fn publish_message(&self, site: SiteName, letter: Carry) -> Result<(), SendFailure> {
        let message = SiteMessage {
            msg_id: letter.msg_id.clone(),
            origin: self.site.to_string(),
            from: letter.from,
            to: letter.to,
            text: letter.text,
            received_ms: u64::try_from(crate::store::now_ms()).unwrap_or(0),
            sender: letter.sender,
        };
        let payload = bytes::Bytes::from(
            message
                .to_bytes()
                .map_err(|e| SendFailure::InvalidParameter(e.to_string()))?,
        );
        let subject = msg_subject(&site);
        let started = Instant::now();
        let mut pause = PAUSE_FIRST;
        loop {
            let outcome = self
                .link
                .publish(subject.clone(), letter.msg_id.clone(), payload.clone())
                .await;
            match outcome {
                Ok(ack) => {
                    self.metrics.gateway("published");
                    tracing::info!(
                        event = "gateway_publish",
                        msg_id = %LogSafe(&letter.msg_id),
                        site = %site,
                        to = %LogSafe(&message.to),
                        from = %LogSafe(&message.from),
                        seq = ack.sequence,
                        duplicate = ack.duplicate,
                        took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "message handed to the cluster"
                    );
                    return Ok(());
                }
                Err(e) => {
                    let give_up = matches!(e, LinkError::NotConnected)
                        || started.elapsed() + pause >= PATIENCE;
                    if give_up {
                        self.metrics.gateway("publish_failed");
                        tracing::warn!(
                            event = "gateway_publish",
                            msg_id = %LogSafe(&letter.msg_id),
                            site = %site,
                            reason = %LogSafe(&e.to_string()),
                            "the cluster did not take the message"
                        );
                        return Err(SendFailure::Backbone(e.to_string()));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(PAUSE_MOST);
                }
            }
        }
    }

    /// Sends `letter` by the normal send path, the way to other sites as
    /// `sites` says, with `tag` when it may be a repeat.
    pub(super) async fn send(
        &self,
        letter: crate::outbound::queue::Letter<'_>,
        sites: Sites,
        tag: Option<netsend_proto::delivery_tag::DeliveryTag>,
    ) -> Result<netsend_control::types::SendReport, SendFailure> {
        crate::outbound::send::send_with(
            &self.outbound,
            None,
            letter.to,
            letter.from,
            letter.text,
            sites,
            tag,
        )
        .await
    }

    /// Takes a message that came by SMB for a name at another site: commits
    /// it to the outgoing queue (owner `@<sender address>`, so one host's
    /// flood fills only its own share), then publishes it with the entry's
    /// id; Ok once it is acknowledged by JetStream or, failing that, safe in
    /// the queue, whose retries publish it with the same id.
    pub(crate) async fn accept(
        &self,
        message: &Message,
        peer: Ipv4Addr,
    ) -> Result<(), crate::store::InboxError> {
        let config = self.outbound.config.get();
        let letter = crate::outbound::queue::Letter {
            to: &message.to,
            from: &message.from,
            text: &message.text,
        };
        let id = crate::outbound::queue::enqueue(
            &config.queue,
            &self.inbox,
            &format!("@{peer}"),
            letter,
            config.queue.expire_minutes,
            "waiting for the site backbone",
        )
        .await?;
        let sent = self.send(letter, Sites::Queued { id }, None).await;
        match sent {
            Ok(_) => {
                if let Err(e) = self
                    .inbox
                    .queue(crate::store::QueueOp::Delivered { id })
                    .await
                {
                    tracing::warn!(id, error = %LogSafe(&e), "cannot update the queue");
                }
            }
            Err(e) => tracing::info!(
                event = "gateway_publish",
                id,
                to = %LogSafe(&message.to),
                reason = %LogSafe(&e),
                "message waits in the outgoing queue for the site backbone"
            ),
        }
        Ok(())
    }
}
