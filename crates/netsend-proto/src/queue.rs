//! Store-and-forward on the sending side: when a queued message is tried
//! again, and when it is given up. Sans IO: times in, decisions out.

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    proptest! {
        #[test]
        fn retries_are_never_sooner_than_first_nor_later_than_longest(attempts in 1u32..10_000) {
            let p = RULES.pause(attempts);
            prop_assert!(p >= RULES.first && p <= RULES.longest);
        }
    }
}
