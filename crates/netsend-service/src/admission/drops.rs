//! Drops counted since start, by reason, shared by the drivers that drop
//! (sessions, datagrams, the registrar); each drop is logged with its reason.

use std::net::SocketAddr;

use netsend_proto::display::LogSafe;
use netsend_proto::policy::DropReason;

/// One counter per [`DropReason`], the family the metrics endpoint serves
/// (`netsend_drops_total{reason}`).
#[derive(Debug, Default)]
pub(crate) struct Drops(crate::metrics::Counters);

impl Drops {
    /// Counts `n` drops and writes their log line (structured: reason, peer,
    /// what they were counted against, sender).
    pub(crate) fn count(
        &self,
        reason: DropReason,
        peer: SocketAddr,
        source: &str,
        from: &str,
        retry_after: std::time::Duration,
        n: u64,
    ) {
        let total = self
            .0
            .get_or_create(&[("reason", reason.as_str())])
            .inc_by(n)
            + n;
        tracing::warn!(
            event = "drop",
            reason = reason.as_str(),
            %peer,
            source,
            from = %LogSafe(from),
            retry_after_ms = retry_after.as_millis() as u64,
            count = n,
            total,
            "message dropped"
        );
    }

    /// The counters, for the metrics registry.
    pub(crate) fn family(&self) -> crate::metrics::Counters {
        self.0.clone()
    }

    /// The counts by reason (every reason listed).
    pub(crate) fn counts(&self) -> std::collections::BTreeMap<String, u64> {
        DropReason::ALL
            .iter()
            .map(|r| {
                (
                    r.as_str().to_owned(),
                    self.0.get_or_create(&[("reason", r.as_str())]).get(),
                )
            })
            .collect()
    }
}
