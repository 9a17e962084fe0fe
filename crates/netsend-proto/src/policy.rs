//! Anti-spam: a token bucket per source address, sans IO and bounded in memory.
//!
//! Each source may deliver `burst` messages at once and then `per_minute` a
//! minute. The table holds at most [`MAX_SOURCES`] addresses; when it is full,
//! the source seen longest ago is forgotten, so a flood of spoofed addresses
//! cannot grow memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most sources tracked at once.
pub const MAX_SOURCES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Per-source message rate limits.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// `per_minute` messages a minute after a `burst`; 0 disables the limit.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Whether `source` may deliver one more message at `now` (and takes it).
    pub fn allow(&mut self, now: Instant, source: IpAddr) -> bool {
        if self.per_sec == 0.0 {
            return true;
        }
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            let oldest = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.buckets.remove(&k);
            }
        }
        let (per_sec, burst) = (self.per_sec, self.burst);
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until `source` may send again (zero if it may now).
    pub fn retry_after(&self, source: IpAddr) -> Duration {
        match self.buckets.get(&source) {
            Some(b) if b.tokens < 1.0 && self.per_sec > 0.0 => {
                Duration::from_secs_f64((1.0 - b.tokens) / self.per_sec)
            }
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_per_source() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60, 5);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!((0..10).filter(|_| l.allow(t0, a)).count(), 5);
        // Another source is not held up by the flood.
        assert!(l.allow(t0, b));
        assert!(!l.allow(t0, a));
        assert!(l.retry_after(a) > Duration::ZERO);
        assert!(l.allow(t0 + Duration::from_secs(1), a));
        assert!(!l.allow(t0 + Duration::from_secs(1), a));
    }

    #[test]
    fn memory_is_bounded_and_zero_disables() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60, 1);
        for i in 0..(MAX_SOURCES as u32 + 100) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(i));
            l.allow(t0 + Duration::from_millis(u64::from(i)), ip);
        }
        assert!(l.buckets.len() <= MAX_SOURCES);
        let mut off = RateLimiter::new(0, 0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..1000).all(|_| off.allow(t0, a)));
    }
}
