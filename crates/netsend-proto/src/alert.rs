//! The Alerter's decisions, sans IO: which raised alerts go out as a message
//! and when (batching like NT's `AlertSched`: identical alerts within the
//! batch window become one message with a count), the global cap per minute
//! and the counters of what was held back, the disk watch's
//! once-per-crossing rule, and the texts alert messages carry. Time is a
//! parameter; the service drives it.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The first line of every alert message starts with this, so a netsend
/// receiver shows it as an alert (and people see it is one anywhere else).
pub const ALERT_MARK: &str = "*** ALERT ";

/// How long the global cap's window is.
const CAP_WINDOW: Duration = Duration::from_secs(60);

/// Whether a received message text is an alert message (its first line
/// starts with [`ALERT_MARK`]).
pub fn is_alert(text: &str) -> bool {
    text.starts_with(ALERT_MARK)
}

/// The batching rules (`[alerter]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How long the first alert of a kind waits for identical ones before it
    /// goes out with their count (`gather_secs`).
    pub gather: Duration,
    /// The batch window (`batch_minutes`): identical alerts within it after
    /// the first message go out as one message when it ends.
    pub batch: Duration,
    /// Most alert messages sent per minute (`max_per_minute`); the rest are
    /// dropped and counted.
    pub max_per_minute: u32,
    /// Most kinds of alert waiting at once; a new kind beyond it is dropped
    /// and counted as capped.
    pub max_pending: usize,
}

/// What became of one raised alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// The first of its kind: it goes out at `due` (see
    /// [`Batcher::handle_timeout`]), as [`Outgoing::ticket`] `ticket`.
    Opened {
        /// Names the message this alert goes out in.
        ticket: u64,
        /// When it goes out.
        due: Instant,
    },
    /// An identical alert is waiting or was sent within the batch window:
    /// this one is counted in that batch (`count` so far, it included).
    Batched {
        /// Identical alerts in the batch so far.
        count: u64,
    },
    /// Too many kinds are waiting: dropped and counted.
    Capped,
}

/// An alert message to send now, or one the cap dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<A> {
    /// The alert.
    pub alert: A,
    /// How many identical alerts it stands for.
    pub count: u64,
    /// The time they were raised in (for "in the last ...").
    pub span: Duration,
    /// The ticket of the raise that opened the batch, for its first message;
    /// `None` for the message at the end of a batch window.
    pub ticket: Option<u64>,
    /// Whether the global cap dropped it (counted in
    /// [`Counts::capped`]) rather than letting it go out.
    pub capped: bool,
}

/// What the Alerter held back since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Alerts raised.
    pub raised: u64,
    /// Alert messages that went out.
    pub sent: u64,
    /// Alerts folded into another's message.
    pub batched: u64,
    /// Alerts dropped by the cap.
    pub capped: u64,
}

/// One kind of alert waiting or within its batch window.
#[derive(Debug, Clone)]
struct Window {
    /// When its next message is due.
    due: Instant,
    /// When the counted alerts began.
    since: Instant,
    /// Alerts counted for the next message.
    count: u64,
    /// The opener's ticket, until the first message goes.
    ticket: Option<u64>,
}

/// Batches identical alerts and caps what goes out per minute.
#[derive(Debug)]
pub struct Batcher<A> {
    rules: Rules,
    windows: HashMap<A, Window>,
    next_ticket: u64,
    cap_since: Option<Instant>,
    sent_in_cap: u32,
    counts: Counts,
}

impl<A: Eq + Hash + Clone> Batcher<A> {
    /// An empty batcher with these rules.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            windows: HashMap::new(),
            next_ticket: 1,
            cap_since: None,
            sent_in_cap: 0,
            counts: Counts::default(),
        }
    }

    /// The counters so far.
    pub const fn counts(&self) -> Counts {
        self.counts
    }

    /// Takes an alert raised at `now`.
    pub fn raise(&mut self, now: Instant, alert: A) -> Raised {
        self.counts.raised += 1;
        if let Some(window) = self.windows.get_mut(&alert) {
            window.count += 1;
            self.counts.batched += 1;
            return Raised::Batched {
                count: window.count,
            };
        }
        if self.windows.len() >= self.rules.max_pending {
            self.counts.capped += 1;
            return Raised::Capped;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let due = now + self.rules.gather;
        self.windows.insert(
            alert,
            Window {
                due,
                since: now,
                count: 1,
                ticket: Some(ticket),
            },
        );
        Raised::Opened { ticket, due }
    }

    /// When [`Batcher::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.windows.values().map(|w| w.due).min()
    }

    /// The messages due at `now`: a batch's first message (the opener and
    /// the identical alerts gathered with it), then, at the end of each
    /// batch window that counted more, one message with their count; a
    /// window that counted none is closed. Beyond the cap they come back
    /// with `capped` set.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Outgoing<A>> {
        let mut due: Vec<A> = self
            .windows
            .iter()
            .filter(|(_, w)| w.due <= now)
            .map(|(a, _)| a.clone())
            .collect();
        due.sort_by_key(|a| self.windows.get(a).map(|w| w.due));
        let mut out = Vec::new();
        for alert in due {
            let Some(window) = self.windows.get_mut(&alert) else {
                continue;
            };
            let ticket = window.ticket.take();
            // The opener was not counted as batched; the rest were.
            let opener = u64::from(ticket.is_some());
            if window.count == 0 {
                self.windows.remove(&alert);
                continue;
            }
            let count = window.count;
            let span = now.saturating_duration_since(window.since);
            window.count = 0;
            window.since = now;
            window.due = now + self.rules.batch;
            let capped = !self.take_cap(now);
            if capped {
                self.counts.capped += count;
                // Each dropped alert is counted once, as capped.
                self.counts.batched -= count - opener;
            } else {
                self.counts.sent += 1;
            }
            out.push(Outgoing {
                alert,
                count,
                span,
                ticket,
                capped,
            });
        }
        out
    }

    /// Whether one more message may go out at `now` under the cap (and
    /// counts it).
    fn take_cap(&mut self, now: Instant) -> bool {
        let window_over = self
            .cap_since
            .is_none_or(|since| now.saturating_duration_since(since) >= CAP_WINDOW);
        if window_over {
            self.cap_since = Some(now);
            self.sent_in_cap = 0;
        }
        if self.sent_in_cap >= self.rules.max_per_minute {
            return false;
        }
        self.sent_in_cap += 1;
        true
    }
}

/// "5 minutes", "1 minute", "10 seconds": a span as people say it, in whole
/// minutes from one minute on.
pub fn span_text(span: Duration) -> String {
    let secs = span.as_secs();
    let (n, unit) = if secs >= 60 {
        ((secs + 30) / 60, "minute")
    } else {
        (secs.max(1), "second")
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

/// What an alert message says.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The class, upper case ("ADMIN").
    pub class: &'a str,
    /// The service that raised it.
    pub service: &'a str,
    /// The program that raised it, when known.
    pub program: Option<&'a str>,
    /// The computer it was raised on.
    pub computer: &'a str,
    /// The rendered text.
    pub text: &'a str,
}

impl Message<'_> {
    /// The message text for `count` identical alerts raised in `span`: the
    /// mark line (class, service, program, computer), the text, and, for
    /// more than one, "(12 times in the last 5 minutes)".
    pub fn render(&self, count: u64, span: Duration) -> String {
        let program = self.program.map_or_else(String::new, |p| format!(" ({p})"));
        let mut out = format!(
            "{ALERT_MARK}{} from {}{program} on {} ***\n{}",
            self.class,
            self.service,
            self.computer,
            self.text.trim_end()
        );
        if count > 1 {
            out.push_str(&format!(
                "\n({count} times in the last {})",
                span_text(span)
            ));
        }
        out
    }
}

/// A crossing of a disk watch's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskEvent {
    /// Free space fell below the threshold.
    Low,
    /// Free space is at or above the threshold again.
    Recovered,
}

/// One watched filesystem: alerts once when its free space falls below the
/// threshold and once when it recovers, not at every check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskWatch {
    low: bool,
}

impl DiskWatch {
    /// Takes one check: `available` of `total` bytes free to unprivileged
    /// users, threshold `min_free_percent`; the crossing, if this check is
    /// one. A filesystem of size 0 is never low.
    pub fn observe(
        &mut self,
        available: u64,
        total: u64,
        min_free_percent: u8,
    ) -> Option<DiskEvent> {
        let low = u128::from(available) * 100 < u128::from(total) * u128::from(min_free_percent);
        match (self.low, low) {
            (false, true) => {
                self.low = true;
                Some(DiskEvent::Low)
            }
            (true, false) => {
                self.low = false;
                Some(DiskEvent::Recovered)
            }
            _ => None,
        }
    }
}

/// The text of a disk watch's alert: NT's 3000 "Drive %1 is nearly full.
/// %2 bytes are available." when low, and its recovery.
pub fn disk_text(event: DiskEvent, path: &str, available: u64, min_free_percent: u8) -> String {
    match event {
        DiskEvent::Low => format!(
            "Drive {path} is nearly full. {available} bytes are available.\n\
             Please warn users and delete unneeded files."
        ),
        DiskEvent::Recovered => format!(
            "Drive {path} has {available} bytes available again \
             (at least {min_free_percent}% free)."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            gather: Duration::from_secs(10),
            batch: Duration::from_secs(300),
            max_per_minute: 3,
            max_pending: 8,
        }
    }

    #[test]
    fn a_burst_of_identical_alerts_is_one_message_with_its_count() {
        let t0 = Instant::now();
        let mut b = Batcher::new(rules());
        let Raised::Opened { ticket, due } = b.raise(t0, "disk") else {
            panic!("the first alert did not open a batch")
        };
        assert_eq!(due, t0 + Duration::from_secs(10));
        for i in 2..=100 {
            assert_eq!(
                b.raise(t0 + Duration::from_millis(i * 10), "disk"),
                Raised::Batched { count: i }
            );
        }
        assert!(b.handle_timeout(t0 + Duration::from_secs(9)).is_empty());
        let out = b.handle_timeout(due);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].count, 100);
        assert_eq!(out[0].ticket, Some(ticket));
        assert!(!out[0].capped);
        let c = b.counts();
        assert_eq!((c.raised, c.sent, c.batched, c.capped), (100, 1, 99, 0));
    }

    #[test]
    fn alerts_after_the_first_message_wait_for_the_end_of_the_window() {
        let t0 = Instant::now();
        let mut b = Batcher::new(rules());
        b.raise(t0, "log");
        let first = t0 + Duration::from_secs(10);
        assert_eq!(b.handle_timeout(first)[0].count, 1);
        for s in 0..12 {
            b.raise(first + Duration::from_secs(20 + s), "log");
        }
        assert_eq!(b.poll_timeout(), Some(first + Duration::from_secs(300)));
        let out = b.handle_timeout(first + Duration::from_secs(300));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].count, out[0].ticket), (12, None));
        assert_eq!(span_text(out[0].span), "5 minutes");
        // A window that counted none closes; the next alert opens a batch.
        assert!(b
            .handle_timeout(first + Duration::from_secs(600))
            .is_empty());
        assert_eq!(b.poll_timeout(), None);
        assert!(matches!(
            b.raise(first + Duration::from_secs(601), "log"),
            Raised::Opened { .. }
        ));
    }

    #[test]
    fn different_alerts_are_not_batched_together() {
        let t0 = Instant::now();
        let mut b = Batcher::new(rules());
        assert!(matches!(b.raise(t0, "a"), Raised::Opened { .. }));
        assert!(matches!(b.raise(t0, "b"), Raised::Opened { .. }));
        let out = b.handle_timeout(t0 + Duration::from_secs(10));
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|o| o.count == 1 && !o.capped));
    }

    #[test]
    fn the_cap_drops_and_counts_what_is_beyond_it_and_lifts_after_a_minute() {
        let t0 = Instant::now();
        let mut b = Batcher::new(rules());
        for kind in ["a", "b", "c", "d", "e"] {
            b.raise(t0, kind);
        }
        b.raise(t0, "e");
        let out = b.handle_timeout(t0 + Duration::from_secs(10));
        assert_eq!(out.iter().filter(|o| !o.capped).count(), 3);
        let capped: u64 = out.iter().filter(|o| o.capped).map(|o| o.count).sum();
        let c = b.counts();
        assert_eq!(c.capped, capped);
        assert_eq!(c.sent, 3);
        assert_eq!(c.raised, c.sent + c.batched + c.capped);
        b.raise(t0 + Duration::from_secs(80), "f");
        let out = b.handle_timeout(t0 + Duration::from_secs(90));
        assert_eq!(out.len(), 1);
        assert!(!out[0].capped);
    }

    #[test]
    fn too_many_kinds_waiting_are_capped() {
        let t0 = Instant::now();
        let mut b = Batcher::new(rules());
        for i in 0..8 {
            assert!(matches!(b.raise(t0, i), Raised::Opened { .. }));
        }
        assert_eq!(b.raise(t0, 8), Raised::Capped);
        assert_eq!(b.raise(t0, 0), Raised::Batched { count: 2 });
        assert_eq!(b.counts().capped, 1);
    }

    #[test]
    fn messages_are_marked_and_carry_the_count() {
        let m = Message {
            class: "ADMIN",
            service: "disk",
            program: Some("netsend"),
            computer: "HOSTA",
            text: "Drive / is nearly full.\n",
        };
        let one = m.render(1, Duration::from_secs(10));
        assert_eq!(
            one,
            "*** ALERT ADMIN from disk (netsend) on HOSTA ***\nDrive / is nearly full."
        );
        assert!(is_alert(&one));
        let many = m.render(12, Duration::from_secs(300));
        assert!(
            many.ends_with("\n(12 times in the last 5 minutes)"),
            "{many}"
        );
        assert!(!is_alert("ALERT: buy now"));
        assert_eq!(span_text(Duration::from_secs(1)), "1 second");
        assert_eq!(span_text(Duration::from_secs(61)), "1 minute");
    }

    #[test]
    fn a_disk_alerts_once_per_crossing_and_once_on_recovery() {
        let mut w = DiskWatch::default();
        let total = 1000;
        assert_eq!(w.observe(500, total, 5), None);
        assert_eq!(w.observe(49, total, 5), Some(DiskEvent::Low));
        assert_eq!(w.observe(10, total, 5), None);
        assert_eq!(w.observe(0, total, 5), None);
        assert_eq!(w.observe(50, total, 5), Some(DiskEvent::Recovered));
        assert_eq!(w.observe(900, total, 5), None);
        assert_eq!(w.observe(1, total, 5), Some(DiskEvent::Low));
        assert_eq!(DiskWatch::default().observe(0, 0, 5), None);
        assert_eq!(
            DiskWatch::default().observe(u64::MAX / 200, u64::MAX, 1),
            Some(DiskEvent::Low)
        );
        assert!(disk_text(DiskEvent::Low, "/var", 42, 5)
            .starts_with("Drive /var is nearly full. 42 bytes are available."));
    }
}
