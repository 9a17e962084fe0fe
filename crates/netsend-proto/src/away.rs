//! Away messages (`netsend away TEXT`): which received messages get an
//! automatic answer, the pure part. Time is passed in (Unix ms).
//!
//! While a user is away, each sender (a claimed name at a source address)
//! gets at most one automatic answer per [`ANSWER_INTERVAL_MS`]; never a
//! broadcast, never a message from this host or from the user's own name,
//! and never an automatic answer. Automatic answers are marked: their first
//! line is [`MARKER`], which any receiver shows as it is (Windows' and
//! Samba's message pop-ups print it above the text) and which a netsend
//! receiver recognises ([`is_automatic`]). Two away hosts therefore cannot
//! loop: the answer to a person's message is marked, and a marked message
//! is never answered, so every exchange ends after one automatic answer;
//! the hourly rule bounds even a peer that strips the mark.
//!
//! Memory is bounded: [`AwayRule`] remembers at most its capacity of
//! (user, sender, address) answers. When it is full of answers younger than
//! the interval, it answers nobody new until one ages out, rather than
//! forget one and answer that sender twice within the hour.

use std::collections::HashMap;
use std::net::IpAddr;

/// The first line of every automatic answer.
pub const MARKER: &str = "(automatic answer)";

/// Shortest time between two automatic answers to one sender, in ms.
pub const ANSWER_INTERVAL_MS: i64 = 60 * 60 * 1000;

/// Answers remembered by default (the service's table).
pub const DEFAULT_CAPACITY: usize = 4096;

/// Longest away text, in bytes (it must fit in one message with the
/// marker).
pub const MAX_AWAY_TEXT: usize = 1024;

/// The text of an automatic answer: the marker line, then the away text.
pub fn automatic_text(away_text: &str) -> String {
    format!("{MARKER}\n{away_text}")
}

/// Whether `text` is an automatic answer: its first line is the marker, or
/// follows a forwarding host's `(forwarded by ...)` line.
pub fn is_automatic(text: &str) -> bool {
    let mut lines = text.lines().map(str::trim);
    match lines.next() {
        Some(first) if crate::forward::is_forwarded(first) => {
            lines.next().is_some_and(|l| l.starts_with(MARKER))
        }
        Some(first) => first.starts_with(MARKER),
        None => false,
    }
}

/// Why an away text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwayTextError {
    /// Nothing to say.
    #[error("the away text is empty")]
    Empty,
    /// Longer than [`MAX_AWAY_TEXT`].
    #[error("the away text is {0} bytes; at most {MAX_AWAY_TEXT} are kept")]
    TooLong(usize),
}

/// Checks an away text; returns it trimmed.
pub fn check_text(text: &str) -> Result<&str, AwayTextError> {
    let text = text.trim();
    if text.is_empty() {
        Err(AwayTextError::Empty)
    } else if text.len() > MAX_AWAY_TEXT {
        Err(AwayTextError::TooLong(text.len()))
    } else {
        Ok(text)
    }
}

/// A received message, as the rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The away user it was stored for.
    pub user: &'a str,
    /// The sender's claimed name.
    pub from: &'a str,
    /// The address it came from, if one is known.
    pub source: Option<IpAddr>,
    /// Whether it was a broadcast.
    pub broadcast: bool,
    /// Its text.
    pub text: &'a str,
    /// Whether it came from this host (one of its own addresses).
    pub from_this_host: bool,
}

/// Why a message gets no automatic answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// It was a broadcast.
    Broadcast,
    /// It is itself an automatic answer.
    Automatic,
    /// It came from this host or from the user's own name.
    Ourselves,
    /// Its source address is unknown.
    NoSource,
    /// This sender was answered less than an interval ago.
    AnsweredRecently,
    /// The table is full of recent answers.
    Busy,
}

impl Skip {
    /// A short reason for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Broadcast => "broadcast",
            Self::Automatic => "automatic answer",
            Self::Ourselves => "from ourselves",
            Self::NoSource => "no source address",
            Self::AnsweredRecently => "answered within the hour",
            Self::Busy => "too many recent answers",
        }
    }
}

/// Who was answered when: (user, sender upper case, source).
type Key = (String, String, IpAddr);

/// The one-answer-per-hour rule, with bounded memory.
#[derive(Debug, Clone)]
pub struct AwayRule {
    answered: HashMap<Key, i64>,
    capacity: usize,
    interval_ms: i64,
}

impl Default for AwayRule {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY, ANSWER_INTERVAL_MS)
    }
}

impl AwayRule {
    /// A rule remembering at most `capacity` answers (at least one), each
    /// for `interval_ms`.
    pub fn new(capacity: usize, interval_ms: i64) -> Self {
        Self {
            answered: HashMap::new(),
            capacity: capacity.max(1),
            interval_ms,
        }
    }

    /// Whether `message`, received at `now_ms`, gets an automatic answer;
    /// an answer is recorded as given.
    pub fn decide(&mut self, now_ms: i64, message: &Incoming<'_>) -> Result<(), Skip> {
        if message.broadcast {
            return Err(Skip::Broadcast);
        }
        if is_automatic(message.text) {
            return Err(Skip::Automatic);
        }
        if message.from_this_host || message.from.trim().eq_ignore_ascii_case(message.user) {
            return Err(Skip::Ourselves);
        }
        let source = message.source.ok_or(Skip::NoSource)?;
        let key = (
            message.user.to_owned(),
            message.from.trim().to_uppercase(),
            source,
        );
        if let Some(&at) = self.answered.get(&key) {
            if now_ms.saturating_sub(at) < self.interval_ms {
                return Err(Skip::AnsweredRecently);
            }
        }
        if self.answered.len() >= self.capacity && !self.answered.contains_key(&key) {
            let interval = self.interval_ms;
            self.answered
                .retain(|_, at| now_ms.saturating_sub(*at) < interval);
            if self.answered.len() >= self.capacity {
                return Err(Skip::Busy);
            }
        }
        self.answered.insert(key, now_ms);
        Ok(())
    }

    /// Forgets `user`'s answers (they came back, or set a new away text:
    /// a new absence answers everyone again).
    pub fn forget_user(&mut self, user: &str) {
        self.answered.retain(|(u, _, _), _| u != user);
    }

    /// Answers remembered now.
    pub fn len(&self) -> usize {
        self.answered.len()
    }

    /// Whether no answer is remembered.
    pub fn is_empty(&self) -> bool {
        self.answered.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const HOUR: i64 = ANSWER_INTERVAL_MS;

    fn from(name: &'static str, last: u8) -> Incoming<'static> {
        Incoming {
            user: "alice",
            from: name,
            source: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))),
            broadcast: false,
            text: "hello",
            from_this_host: false,
        }
    }

    #[test]
    fn each_sender_is_answered_once_an_hour() {
        let mut rule = AwayRule::default();
        assert_eq!(rule.decide(0, &from("bob", 11)), Ok(()));
        assert_eq!(
            rule.decide(HOUR - 1, &from("BOB", 11)),
            Err(Skip::AnsweredRecently)
        );
        // The same name at another host is another sender.
        assert_eq!(rule.decide(10, &from("bob", 12)), Ok(()));
        assert_eq!(rule.decide(HOUR, &from("bob", 11)), Ok(()));
        // Another away user answers for themselves.
        let carol = Incoming {
            user: "carol",
            ..from("bob", 11)
        };
        assert_eq!(rule.decide(HOUR, &carol), Ok(()));
        rule.forget_user("alice");
        assert_eq!(rule.len(), 1);
        assert_eq!(rule.decide(HOUR + 1, &from("bob", 11)), Ok(()));
    }

    #[test]
    fn broadcasts_automatic_answers_and_ourselves_are_never_answered() {
        let mut rule = AwayRule::default();
        let broadcast = Incoming {
            broadcast: true,
            ..from("bob", 11)
        };
        assert_eq!(rule.decide(0, &broadcast), Err(Skip::Broadcast));
        let answer = automatic_text("I am away");
        let automatic = Incoming {
            text: &answer,
            ..from("bob", 11)
        };
        assert_eq!(rule.decide(0, &automatic), Err(Skip::Automatic));
        let forwarded = crate::forward::forwarded_text("HOSTB", &answer);
        let automatic = Incoming {
            text: &forwarded,
            ..from("bob", 11)
        };
        assert_eq!(rule.decide(0, &automatic), Err(Skip::Automatic));
        let local = Incoming {
            from_this_host: true,
            ..from("bob", 11)
        };
        assert_eq!(rule.decide(0, &local), Err(Skip::Ourselves));
        assert_eq!(rule.decide(0, &from("ALICE", 11)), Err(Skip::Ourselves));
        let nowhere = Incoming {
            source: None,
            ..from("bob", 11)
        };
        assert_eq!(rule.decide(0, &nowhere), Err(Skip::NoSource));
        assert!(rule.is_empty());
    }

    #[test]
    fn the_marker_is_recognised_only_at_the_start() {
        assert!(is_automatic("(automatic answer)\nI am away"));
        assert!(is_automatic("  (automatic answer)"));
        assert!(!is_automatic("hello\n(automatic answer)"));
        assert!(!is_automatic(""));
        assert_eq!(check_text("  back at 3 "), Ok("back at 3"));
        assert_eq!(check_text(" "), Err(AwayTextError::Empty));
        let long = "x".repeat(MAX_AWAY_TEXT + 1);
        assert_eq!(
            check_text(&long),
            Err(AwayTextError::TooLong(MAX_AWAY_TEXT + 1))
        );
    }

    /// Two away hosts, each answering what it receives with the rule: a
    /// person's message starts an exchange that ends after one automatic
    /// answer, whatever either side sends next.
    #[test]
    fn two_away_hosts_never_loop() {
        let mut a = AwayRule::default();
        let mut b = AwayRule::default();
        let ip_a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let ip_b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        // alice at A writes to bob at B.
        let mut in_flight = Some(("alice", ip_a, "hi bob".to_owned()));
        let mut hops = 0;
        let mut now = 0;
        while let Some((sender, source, text)) = in_flight.take() {
            hops += 1;
            assert!(hops < 10, "a loop");
            now += 1;
            let (rule, user, here) = if source == ip_a {
                (&mut b, "bob", ip_b)
            } else {
                (&mut a, "alice", ip_a)
            };
            let m = Incoming {
                user,
                from: sender,
                source: Some(source),
                broadcast: false,
                text: &text,
                from_this_host: false,
            };
            if rule.decide(now, &m).is_ok() {
                in_flight = Some((user, here, automatic_text("away")));
            }
        }
        assert_eq!(hops, 2, "one message and one automatic answer");
    }

    #[test]
    fn a_full_table_answers_nobody_new_until_an_answer_ages_out() {
        let mut rule = AwayRule::new(2, HOUR);
        assert_eq!(rule.decide(0, &from("a", 1)), Ok(()));
        assert_eq!(rule.decide(1, &from("b", 1)), Ok(()));
        assert_eq!(rule.decide(2, &from("c", 1)), Err(Skip::Busy));
        assert_eq!(rule.decide(HOUR, &from("c", 1)), Ok(()));
        assert!(rule.len() <= 2);
    }

    proptest! {
        /// Whatever arrives, the table stays within its capacity and no
        /// sender is answered twice within the interval.
        #[test]
        fn bounded_and_at_most_once_an_hour(
            events in proptest::collection::vec((0u8..20, 0u8..4, 0i64..1_000_000), 1..200)
        ) {
            let mut rule = AwayRule::new(8, 500_000);
            let mut last: HashMap<(u8, u8), i64> = HashMap::new();
            let mut now = 0;
            let names: Vec<String> = (0..20).map(|i| format!("S{i}")).collect();
            for (name, host, step) in events {
                now += step / 1000;
                let m = Incoming {
                    user: "u",
                    from: &names[usize::from(name)],
                    source: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, host))),
                    broadcast: false,
                    text: "x",
                    from_this_host: false,
                };
                if rule.decide(now, &m).is_ok() {
                    if let Some(at) = last.insert((name, host), now) {
                        prop_assert!(now - at >= 500_000);
                    }
                }
                prop_assert!(rule.len() <= 8);
            }
        }
    }
}
