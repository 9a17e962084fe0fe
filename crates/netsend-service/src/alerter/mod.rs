//! The Alerter: administrative alerts (from clients, failed units, the
//! journal and disk watches) batched by `netsend_proto::alert::Batcher` and
//! sent to every `[alerter] names` entry through the normal send path; an
//! alert name that cannot be reached now gets it through the outgoing queue
//! (durable, retried like `send --queue`).
//!
//! - `disk`: the disk watch (statvfs, periodic).
//! - `journal`: the journal watch (`journalctl --follow` as a supervised
//!   child).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netsend_proto::alert::{Batcher, Outgoing, Raised, Rules};
use netsend_proto::display::LogSafe;
use tokio::sync::{oneshot, Notify};

use crate::config::Config;
use crate::outbound::send::SendFailure;
use crate::outbound::Outbound;
use crate::shutdown::Shutdown;
use crate::store::InboxHandle;
use netsend_control::types::{
    AlertCounts, AlertDelivery, AlertFailure, AlertHeld, AlertQueued, AlertReport, AlertRequest,
    SendReport,
};

/// The owner of queued alerts in the outgoing queue (`netsend queue`).
pub(crate) const QUEUE_OWNER: &str = "alerter";

/// Most kinds of alert waiting at once.
const MAX_PENDING: usize = 1024;

/// A send under way, owning what it needs.
pub(crate) type Sending = Pin<Box<dyn Future<Output = Result<SendReport, SendFailure>> + Send>>;

/// The send path alerts take: [`Outbound`] in the service, a recorder in
/// tests.
pub(crate) trait AlertSend: Send + Sync {
    /// Sends `text` from `from` to the alias `to`.
    fn send(&self, to: String, from: String, text: String) -> Sending;
}

impl AlertSend for Arc<Outbound> {
    fn send(&self, to: String, from: String, text: String) -> Sending {
        let outbound = self.clone();
        Box::pin(
            async move { crate::outbound::send::send(&outbound, None, &to, &from, &text).await },
        )
    }
}

/// The batcher and the raisers waiting for their alert's first message.
struct State {
    batcher: Batcher<AlertRequest>,
    waiting: HashMap<u64, oneshot::Sender<AlertReport>>,
}

/// The Alerter component.
pub(crate) struct Alerter {
    config: Arc<Config>,
    inbox: InboxHandle,
    network: Box<dyn AlertSend>,
    state: Mutex<State>,
    wake: Notify,
}

impl Alerter {
    /// The Alerter `config` asks for, or `None` when it is off.
    pub(crate) fn from_config(
        config: &Arc<Config>,
        inbox: &InboxHandle,
        network: Box<dyn AlertSend>,
    ) -> Option<Arc<Self>> {
        let a = &config.alerter;
        if !a.is_on() {
            return None;
        }
        let rules = Rules {
            gather: Duration::from_secs(a.gather_secs),
            batch: Duration::from_secs(a.batch_minutes.saturating_mul(60)),
            max_per_minute: a.max_per_minute,
            max_pending: MAX_PENDING,
        };
        Some(Arc::new(Self {
            config: config.clone(),
            inbox: inbox.clone(),
            network,
            state: Mutex::new(State {
                batcher: Batcher::new(rules),
                waiting: HashMap::new(),
            }),
            wake: Notify::new(),
        }))
    }

    /// The counters for `messenger status`.
    pub(crate) fn counts(&self) -> AlertCounts {
        let c = self.state.lock().expect("alerter lock").batcher.counts();
        AlertCounts {
            raised: c.raised,
            sent: c.sent,
            batched: c.batched,
            capped: c.capped,
        }
    }

    /// Raises `alert`; the report of its message when it opened a batch
    /// (after the gather time and the sends), else why it was held.
    pub(crate) async fn raise(&self, alert: AlertRequest) -> AlertReport {
        tracing::info!(event = "alert", class = alert.class.as_str(), service = %LogSafe(&alert.service), text = %LogSafe(&alert.text), "alert raised");
        let receiver = {
            let mut state = self.state.lock().expect("alerter lock");
            match state.batcher.raise(Instant::now(), alert) {
                Raised::Opened { ticket, .. } => {
                    let (tx, rx) = oneshot::channel();
                    state.waiting.insert(ticket, tx);
                    rx
                }
                Raised::Batched { count } => {
                    return AlertReport {
                        held: Some(AlertHeld::Batched { count }),
                        ..AlertReport::default()
                    }
                }
                Raised::Capped => return self.capped(),
            }
        };
        self.wake.notify_one();
        // The driver always answers; a stop in between answers as capped.
        receiver.await.unwrap_or_else(|_| self.capped())
    }

    fn capped(&self) -> AlertReport {
        AlertReport {
            held: Some(AlertHeld::Capped {
                max_per_minute: self.config.alerter.max_per_minute,
            }),
            ..AlertReport::default()
        }
    }

    /// Sends batches when they are due, until the service stops; each
    /// batch's sends run on the stop's tracker, so a stop waits for them.
    pub(crate) async fn run(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            let (due, next) = {
                let mut state = self.state.lock().expect("alerter lock");
                let due = state.batcher.handle_timeout(Instant::now());
                let due: Vec<_> = due
                    .into_iter()
                    .map(|out| {
                        let waiter = out.ticket.and_then(|t| state.waiting.remove(&t));
                        (out, waiter)
                    })
                    .collect();
                (due, state.batcher.poll_timeout())
            };
            for (out, waiter) in due {
                let alerter = self.clone();
                shutdown.spawn(async move {
                    let report = alerter.send(out).await;
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(report);
                    }
                });
            }
            let sleep = next.map_or(Duration::from_secs(3600), |at| {
                at.saturating_duration_since(Instant::now())
            });
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Sends one due batch to every alert name (queueing it for those that
    /// cannot be reached now), or reports it capped.
    async fn send(&self, out: Outgoing<AlertRequest>) -> AlertReport {
        if out.capped {
            tracing::info!(event = "drop", reason = "alert_cap", count = out.count, service = %LogSafe(&out.alert.service), "alerts dropped by [alerter] max_per_minute");
            return self.capped();
        }
        let alert = &out.alert;
        let message = netsend_proto::alert::Message {
            class: alert.class.as_str(),
            service: &alert.service,
            program: alert.program.as_deref(),
            computer: &self.config.computer_name,
            text: &alert.text,
        };
        let text = message.render(out.count, out.span);
        let from = self.config.computer_name.clone();
        let sends: Vec<_> = self
            .config
            .alerter
            .names
            .iter()
            .map(|name| {
                let sent = self.network.send(name.clone(), from.clone(), text.clone());
                let name = name.clone();
                async move { (name, sent.await) }
            })
            .collect();
        let mut report = AlertReport::default();
        for (name, sent) in futures_join_all(sends).await {
            match sent {
                Ok(sent) => report.delivered.push(AlertDelivery {
                    name,
                    address: sent.address,
                }),
                Err(e) if netsend_proto::queue::is_transient(e.status().0) => {
                    self.queue(&mut report, name, &from, &text, &e).await;
                }
                Err(e) => report.failed.push(AlertFailure {
                    name,
                    code: e.status().0,
                    detail: e.to_string(),
                }),
            }
        }
        tracing::info!(
            event = "alert",
            count = out.count,
            delivered = report.delivered.len(),
            queued = report.queued.len(),
            failed = report.failed.len(),
            "alert sent"
        );
        report
    }

    /// Queues `text` for `name`, which could not take it now (`failure`).
    async fn queue(
        &self,
        report: &mut AlertReport,
        name: String,
        from: &str,
        text: &str,
        failure: &SendFailure,
    ) {
        let letter = crate::outbound::queue::Letter {
            to: &name,
            from,
            text,
        };
        let reason = failure.to_string();
        let queued = crate::outbound::queue::enqueue(
            &self.config.queue,
            &self.inbox,
            QUEUE_OWNER,
            letter,
            self.config.queue.expire_minutes,
            &reason,
        )
        .await;
        match queued {
            Ok(id) => report.queued.push(AlertQueued {
                name,
                id,
                code: failure.status().0,
                reason,
            }),
            Err(e) => report.failed.push(AlertFailure {
                name,
                code: netsend_wire::status::NetApiStatus::ERROR_REQ_NOT_ACCEP.0,
                detail: format!("{reason}; and {e}"),
            }),
        }
    }
}

/// Awaits every future, in order (alert names are few, so each runs in its
/// own task).
async fn futures_join_all<T: Send + 'static>(
    futures: Vec<impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        if let Ok(value) = handle.await {
            out.push(value);
        }
    }
    out
}

#[cfg(test)]
mod tests;
