//! The Alerter in-process: a real SQLite outgoing queue in a temporary
//! directory and a send path where `OPS` answers and every other name is
//! not on the network.

use std::sync::{Arc, Mutex};

use super::{AlertSend, Alerter, Sending, QUEUE_OWNER};
use crate::config::Config;
use crate::outbound::send::SendFailure;
use crate::shutdown::Shutdown;
use crate::store::{Inbox, InboxHandle};
use netsend_control::types::{AlertClass, AlertHeld, AlertReport, AlertRequest, SendReport};

/// The sends asked for: (to, from, text).
#[derive(Clone, Default)]
struct OpsOnly(Arc<Mutex<Vec<(String, String, String)>>>);

impl AlertSend for OpsOnly {
    fn send(&self, to: String, from: String, text: String) -> Sending {
        self.0.lock().unwrap().push((to.clone(), from, text));
        Box::pin(async move {
            if to == "OPS" {
                Ok(SendReport {
                    to,
                    address: "192.0.2.2:139".into(),
                    multi_block: false,
                    receipt_id: None,
                    verified: false,
                })
            } else {
                Err(SendFailure::NameNotFound(to))
            }
        })
    }
}

fn alerter(
    names: &[&str],
    gather_secs: u64,
) -> (tempfile::TempDir, InboxHandle, OpsOnly, Arc<Alerter>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        computer_name: "HOSTA".into(),
        ..Config::default()
    };
    config.alerter.names = names.iter().map(|n| (*n).to_owned()).collect();
    config.alerter.gather_secs = gather_secs;
    let inbox = Inbox::open(&dir.path().join("inbox.db"), 100).unwrap();
    let sent = OpsOnly::default();
    let alerter = Alerter::from_config(&Arc::new(config), &inbox, Box::new(sent.clone())).unwrap();
    (dir, inbox, sent, alerter)
}

fn disk_full() -> AlertRequest {
    AlertRequest {
        class: AlertClass::Admin,
        service: "disk".into(),
        text: "Drive / is nearly full.".into(),
        program: None,
    }
}

/// Raises [`disk_full`] in the background, once it is registered as the
/// opener of its batch (bounded wait); its report when the batch is sent.
async fn raise_first(alerter: &Arc<Alerter>) -> tokio::task::JoinHandle<AlertReport> {
    let first = {
        let alerter = alerter.clone();
        tokio::spawn(async move { alerter.raise(disk_full()).await })
    };
    for _ in 0..100 {
        if alerter.counts().raised == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    first
}

#[test]
fn the_alerter_is_off_without_names() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&dir.path().join("inbox.db"), 100).unwrap();
    let config = Arc::new(Config::default());
    assert!(Alerter::from_config(&config, &inbox, Box::new(OpsOnly::default())).is_none());
}

#[tokio::test]
async fn an_alert_goes_to_every_name_and_waits_in_the_queue_for_the_absent() {
    let (_dir, inbox, sent, alerter) = alerter(&["OPS", "ALICE"], 0);
    let shutdown = Shutdown::new();
    shutdown.spawn(alerter.clone().run(shutdown.clone()));
    let report = alerter.raise(disk_full()).await;
    assert_eq!(report.held, None);
    assert_eq!(report.delivered.len(), 1);
    assert_eq!(report.delivered[0].name, "OPS");
    assert_eq!(report.queued.len(), 1, "{report:?}");
    assert_eq!(
        (report.queued[0].name.as_str(), report.queued[0].code),
        ("ALICE", 2273)
    );
    let sends = sent.0.lock().unwrap().clone();
    assert_eq!(sends.len(), 2);
    assert!(sends.iter().all(|(_, from, text)| from == "HOSTA"
        && text == "*** ALERT ADMIN from disk on HOSTA ***\nDrive / is nearly full."));
    let queued = inbox.queued(None, 0, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].owner.as_str(), queued[0].to.as_str()),
        (QUEUE_OWNER, "ALICE")
    );
    assert!(queued[0].text.starts_with("*** ALERT ADMIN"));
    assert_eq!(alerter.counts().sent, 1);
    shutdown.request();
    shutdown.finish().await;
}

#[tokio::test]
async fn identical_alerts_in_the_gather_time_are_one_message_with_the_count() {
    let (_dir, _inbox, sent, alerter) = alerter(&["OPS"], 1);
    let shutdown = Shutdown::new();
    shutdown.spawn(alerter.clone().run(shutdown.clone()));
    let first = raise_first(&alerter).await;
    let mut last = None;
    for _ in 1..20 {
        last = alerter.raise(disk_full()).await.held;
    }
    assert_eq!(last, Some(AlertHeld::Batched { count: 20 }));
    let report = first.await.unwrap();
    assert_eq!(report.delivered.len(), 1);
    let sends = sent.0.lock().unwrap().clone();
    assert_eq!(sends.len(), 1);
    assert!(
        sends[0].2.ends_with("\n(20 times in the last 1 second)"),
        "{}",
        sends[0].2
    );
    let counts = alerter.counts();
    assert_eq!((counts.raised, counts.sent, counts.batched), (20, 1, 19));
    assert_eq!(counts.suppressed(), 19);
    shutdown.request();
    shutdown.finish().await;
}

#[tokio::test]
async fn a_stop_sends_the_batches_still_gathering() {
    let (_dir, inbox, sent, alerter) = alerter(&["OPS", "ALICE"], 600);
    let shutdown = Shutdown::new();
    shutdown.spawn(alerter.clone().run(shutdown.clone()));
    let first = raise_first(&alerter).await;
    assert_eq!(
        alerter.raise(disk_full()).await.held,
        Some(AlertHeld::Batched { count: 2 })
    );
    shutdown.request();
    shutdown.finish().await;
    let report = first.await.unwrap();
    assert_eq!(
        (report.delivered.len(), report.queued.len()),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(sent.0.lock().unwrap().len(), 2);
    assert_eq!(inbox.queued(None, 0, 10).await.unwrap().len(), 1);
}
