//! Store-and-forward on the sending side: when a queued message is tried
//! again, when it is given up, how long a caller may ask it to wait, and
//! whether a user's share of the queue has room for one more. Sans IO:
//! times and counts in, decisions out.

use std::time::Duration;

/// Retry rules of the outgoing queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryRules {
    /// The pause after the first failed attempt; it doubles after each one.
    pub first: Duration,
    /// The longest pause between attempts.
    pub longest: Duration,
}

/// What to do with a queued message after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again at this time (Unix ms).
    RetryAt(i64),
    /// The next attempt would come after the expiry: give up now.
    Expire,
}

/// Whether an attempt failure means "not reachable now" (worth queueing and
/// retrying) rather than a final refusal: name not found (2273) or a network
/// error (2136).
pub const fn is_transient(status: u32) -> bool {
    matches!(status, 2273 | 2136)
}

/// Why a caller's expiry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the expiry must be 1..={longest} minutes")]
pub struct BadExpiry {
    /// The longest allowed, in minutes.
    pub longest: u64,
}

/// The minutes a queued message may wait: `asked` by the caller, or
/// `default`; 0 (a message given up before its first retry) and more than
/// `longest` are refused.
pub const fn expiry_minutes(
    asked: Option<u64>,
    default: u64,
    longest: u64,
) -> Result<u64, BadExpiry> {
    let minutes = match asked {
        Some(m) => m,
        None => default,
    };
    if minutes == 0 || minutes > longest {
        Err(BadExpiry { longest })
    } else {
        Ok(minutes)
    }
}

/// Whether a user's share of the queue takes one more entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// It fits.
    Free,
    /// It fits once this many of the user's oldest finished entries
    /// (delivered, expired, cancelled) are deleted.
    Evict(u64),
    /// Every entry the user may hold is still waiting: refuse.
    Full,
}

/// Room for one more entry of a user who holds `held` entries, `finished`
/// of them finished, when a user may hold at most `cap` (every entry
/// counts, waiting or not, so the table stays bounded).
pub const fn room(held: u64, finished: u64, cap: u64) -> Room {
    if held < cap {
        return Room::Free;
    }
    let excess = held - cap + 1;
    if finished >= excess {
        Room::Evict(excess)
    } else {
        Room::Full
    }
}

impl RetryRules {
    /// The pause before attempt `attempts + 1`, after `attempts` failures.
    pub fn pause(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.longest)
    }

    /// Decides, at `now_ms`, after the `attempts`-th failure, for a message
    /// that expires at `expires_ms`.
    pub fn after_failure(&self, now_ms: i64, attempts: u32, expires_ms: i64) -> AfterFailure {
        let pause = i64::try_from(self.pause(attempts).as_millis()).unwrap_or(i64::MAX);
        let next = now_ms.saturating_add(pause);
        if next > expires_ms {
            AfterFailure::Expire
        } else {
            AfterFailure::RetryAt(next)
        }
    }
}

/// Attempts of queued messages running at once: at most `total`, at most
/// `per_owner` for one user, and one per recipient name. A recipient that
/// hangs until the send deadline thus holds one slot, and one user's queue
/// at most `per_owner`, while everyone else's messages go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempts {
    total: usize,
    per_owner: usize,
    running: Vec<(i64, String, String)>,
}

impl Attempts {
    /// No attempt running yet; each bound is at least 1.
    pub fn new(total: usize, per_owner: usize) -> Self {
        Self {
            total: total.max(1),
            per_owner: per_owner.max(1),
            running: Vec::new(),
        }
    }

    /// Whether the message `id` of `owner` to `to` may be attempted now; if
    /// so it counts as running until [`Attempts::finish`].
    pub fn admit(&mut self, id: i64, owner: &str, to: &str) -> bool {
        let busy = self.running.len() >= self.total
            || self
                .running
                .iter()
                .any(|(i, _, t)| *i == id || t.eq_ignore_ascii_case(to))
            || self.running.iter().filter(|(_, o, _)| o == owner).count() >= self.per_owner;
        if !busy {
            self.running.push((id, owner.to_owned(), to.to_owned()));
        }
        !busy
    }

    /// The attempt of `id` ended.
    pub fn finish(&mut self, id: i64) {
        self.running.retain(|(i, _, _)| *i != id);
    }

    /// How many attempts are running.
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_recipient_and_an_owner_hold_their_share_only() {
        let mut a = Attempts::new(3, 2);
        assert!(a.admit(1, "eve", "HUNG"));
        assert!(!a.admit(1, "eve", "HUNG"), "not twice");
        assert!(!a.admit(2, "bob", "hung"), "one per recipient, any case");
        assert!(a.admit(3, "eve", "OTHER"));
        assert!(!a.admit(4, "eve", "THIRD"), "eve has her two");
        assert!(a.admit(5, "bob", "THIRD"));
        assert!(!a.admit(6, "carol", "FOURTH"), "three in all");
        a.finish(1);
        assert_eq!(a.running(), 2);
        assert!(a.admit(2, "bob", "HUNG"));
    }

    const RULES: RetryRules = RetryRules {
        first: Duration::from_secs(30),
        longest: Duration::from_secs(600),
    };

    #[test]
    fn pauses_double_up_to_the_cap() {
        let pauses: Vec<u64> = (1..=7).map(|a| RULES.pause(a).as_secs()).collect();
        assert_eq!(pauses, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(RULES.pause(200), Duration::from_secs(600));
    }

    #[test]
    fn a_retry_after_the_expiry_is_not_scheduled() {
        assert_eq!(
            RULES.after_failure(0, 1, 60_000),
            AfterFailure::RetryAt(30_000)
        );
        assert_eq!(RULES.after_failure(40_000, 1, 60_000), AfterFailure::Expire);
        assert!(is_transient(2273) && is_transient(2136) && !is_transient(5));
    }

    #[test]
    fn expiry_is_bounded_and_never_zero() {
        assert_eq!(expiry_minutes(None, 1440, 10_080), Ok(1440));
        assert_eq!(expiry_minutes(Some(1), 1440, 10_080), Ok(1));
        let refused = Err(BadExpiry { longest: 10_080 });
        assert_eq!(expiry_minutes(Some(0), 1440, 10_080), refused);
        assert_eq!(expiry_minutes(Some(10_081), 1440, 10_080), refused);
        assert_eq!(expiry_minutes(Some(u64::MAX), 1440, 10_080), refused);
    }

    #[test]
    fn finished_entries_make_room_waiting_ones_do_not() {
        assert_eq!(room(2, 0, 3), Room::Free);
        assert_eq!(room(3, 1, 3), Room::Evict(1));
        assert_eq!(room(3, 0, 3), Room::Full);
        // A lowered cap: enough finished ones go to get below it.
        assert_eq!(room(5, 4, 3), Room::Evict(3));
        assert_eq!(room(5, 2, 3), Room::Full);
        assert_eq!(room(0, 0, 0), Room::Full);
    }

    proptest! {
        #[test]
        fn a_user_never_holds_more_than_the_cap(held in 0u64..500, waiting in 0u64..500, cap in 0u64..300) {
            let finished = held.saturating_sub(waiting);
            match room(held, finished, cap) {
                Room::Free => prop_assert!(held < cap),
                Room::Evict(n) => prop_assert!(n <= finished && held - n < cap),
                Room::Full => prop_assert!(held >= cap),
            }
        }

        #[test]
        fn retries_are_never_sooner_than_first_nor_later_than_longest(attempts in 1u32..10_000) {
            let p = RULES.pause(attempts);
            prop_assert!(p >= RULES.first && p <= RULES.longest);
        }

        #[test]
        fn attempts_never_exceed_their_bounds(
            ops in proptest::collection::vec((0i64..20, 0usize..4, 0usize..6, any::<bool>()), 0..200),
        ) {
            let mut a = Attempts::new(5, 2);
            for (id, owner, to, finish) in ops {
                if finish {
                    a.finish(id);
                } else {
                    a.admit(id, &format!("u{owner}"), &format!("N{to}"));
                }
                prop_assert!(a.running() <= 5);
                for o in 0..4 {
                    let owner = format!("u{o}");
                    prop_assert!(a.running.iter().filter(|(_, x, _)| *x == owner).count() <= 2);
                }
                let mut tos: Vec<&str> = a.running.iter().map(|(_, _, t)| t.as_str()).collect();
                tos.sort_unstable();
                tos.dedup();
                prop_assert_eq!(tos.len(), a.running());
            }
        }
    }
}
