//! The outgoing queue's driver: tries queued messages again when they are
//! due (the rules are `netsend_proto::queue`'s), until each is delivered or
//! expires.

use std::sync::Arc;

use netsend_proto::display::LogSafe;

use super::Outbound;
use crate::shutdown::Shutdown;
use crate::store::InboxHandle;

/// Tries queued messages again when they are due, until each is delivered
/// or expires. Attempts run side by side within
/// [`netsend_proto::queue::Attempts`]' bounds, so a recipient that hangs
/// until the send deadline holds one slot and the rest of the queue goes on.
///
/// At a stop, no new attempt starts and the running ones are awaited (each
/// is bounded by the send deadline), so an attempt's outcome is always
/// recorded and a delivered message is not sent again at the next start.
pub(crate) async fn retry(outbound: Arc<Outbound>, inbox: InboxHandle, shutdown: Shutdown) {
    let mut attempts = netsend_proto::queue::Attempts::new(QUEUE_ATTEMPTS, QUEUE_ATTEMPTS_PER_USER);
    let mut running = tokio::task::JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    loop {
        match inbox.due(crate::store::now_ms()).await {
            Ok(due) => {
                for q in due {
                    if attempts.admit(q.id, &q.owner, &q.to) {
                        let id = q.id;
                        let task = running.spawn(attempt(outbound.clone(), inbox.clone(), q));
                        ids.insert(task.id(), id);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %LogSafe(&e), "cannot read the queue"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                while running.join_next().await.is_some() {}
                return;
            }
            Some(done) = running.join_next_with_id() => {
                let task = done.map_or_else(|e| e.id(), |(task, ())| task);
                if let Some(id) = ids.remove(&task) {
                    attempts.finish(id);
                }
            }
            _ = tokio::time::sleep(QUEUE_POLL) => {}
        }
    }
}

/// One attempt of a queued message, and its outcome recorded in the queue.
async fn attempt(outbound: Arc<Outbound>, inbox: InboxHandle, q: crate::store::Queued) {
    // A local user's queued message counts against them, as when it was sent.
    let uid = nix::unistd::User::from_name(&q.owner)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    // A name at another site is published with the entry's own dedup id,
    // so a retry after a lost acknowledgement is stored once.
    let sites = super::send::Sites::Queued { id: q.id };
    // A netsend recipient stores a retry after a crash that came between
    // its reply and our record of it once.
    let tag = netsend_proto::delivery_tag::DeliveryTag::for_queue_entry(
        q.id,
        q.created_at,
        &q.from,
        &q.to,
        &q.text,
    );
    let sent =
        super::send::send_with(&outbound, uid, &q.to, &q.from, &q.text, sites, Some(tag)).await;
    let op = match sent {
        Ok(report) => {
            tracing::info!(event = "send", id = q.id, to = %LogSafe(&report.to), peer = %report.address, "queued message delivered");
            crate::store::QueueOp::Delivered { id: q.id }
        }
        Err(e) => {
            let attempts = q.attempts.saturating_add(1);
            let next_try = match retry_rules(&outbound.config.get().queue).after_failure(
                crate::store::now_ms(),
                attempts,
                q.expires_at,
            ) {
                netsend_proto::queue::AfterFailure::RetryAt(t)
                    if netsend_proto::queue::is_transient(e.status().0) =>
                {
                    Some(t)
                }
                _ => None,
            };
            if next_try.is_none() {
                tracing::info!(event = "drop", id = q.id, to = %LogSafe(&q.to), reason = %LogSafe(&e), "queued message given up");
            }
            crate::store::QueueOp::Failed {
                id: q.id,
                error: e.to_string(),
                next_try,
            }
        }
    };
    if let Err(e) = inbox.queue(op).await {
        tracing::warn!(id = q.id, error = %LogSafe(&e), "cannot update the queue");
    }
}

/// Queues a message from `owner` whose first attempt failed with `error`,
/// for retries until it expires in `minutes`; at most `[queue]
/// max_per_user` waiting entries per owner. Its queue id.
pub(crate) async fn enqueue(
    config: &crate::config::QueueConfig,
    inbox: &InboxHandle,
    owner: &str,
    letter: Letter<'_>,
    minutes: u64,
    error: &str,
) -> Result<i64, crate::store::InboxError> {
    let now = crate::store::now_ms();
    let expires_at = now.saturating_add(
        i64::try_from(minutes)
            .unwrap_or(i64::MAX / 60_000)
            .saturating_mul(60_000),
    );
    let next_try = match retry_rules(config).after_failure(now, 1, expires_at) {
        netsend_proto::queue::AfterFailure::RetryAt(t) => t,
        netsend_proto::queue::AfterFailure::Expire => expires_at,
    };
    let op = crate::store::QueueOp::Add {
        owner: owner.to_owned(),
        to: letter.to.to_owned(),
        from: letter.from.to_owned(),
        text: letter.text.to_owned(),
        expires_at,
        next_try,
        error: error.to_owned(),
        max_per_owner: u64::try_from(config.max_per_user).unwrap_or(u64::MAX),
    };
    inbox.queue(op).await
}

/// A message to queue: recipient, sender name and text, as sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Letter<'a> {
    /// The recipient alias.
    pub(crate) to: &'a str,
    /// The sender name.
    pub(crate) from: &'a str,
    /// The text.
    pub(crate) text: &'a str,
}

/// Queued messages attempted at once, in all and for one user.
const QUEUE_ATTEMPTS: usize = 16;
const QUEUE_ATTEMPTS_PER_USER: usize = 4;

/// How often the outgoing queue is checked for due entries.
const QUEUE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The outgoing queue's retry rules, from `[queue]`.
pub(crate) fn retry_rules(q: &crate::config::QueueConfig) -> netsend_proto::queue::RetryRules {
    netsend_proto::queue::RetryRules {
        first: std::time::Duration::from_secs(q.retry_secs.max(1)),
        longest: std::time::Duration::from_secs(q.max_retry_secs.max(q.retry_secs).max(1)),
    }
}
