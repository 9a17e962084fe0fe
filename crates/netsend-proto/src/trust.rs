//! Verified senders: which host a remote-channel key belongs to (pinned like
//! ssh's known_hosts), how each received message is marked (`verified HOST`,
//! `unverified`, or flagged as claiming a verified peer's name), and which
//! claimed sender names must arrive verified (`[trust] require_verified_from`).
//!
//! Sans IO: the pins and the names seen are passed in or kept here; the
//! service reads and writes the trust file and stores the marks.

use std::collections::HashMap;

/// Longest host or sender name kept in the table of names seen verified.
const MAX_NAME_LEN: usize = 64;
/// Most sender names remembered as used verified (a flood of verified
/// messages under new names cannot grow the table without bound).
pub const MAX_NAMES: usize = 4096;

/// What a caller's key says about the host it claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The key is pinned for this host.
    Known(String),
    /// Neither the key nor the host is pinned: pin `host` to the key now
    /// (first contact) and treat it as verified.
    FirstContact(String),
    /// The host is pinned with another key: refuse, and log it.
    KeyChanged {
        /// The host as claimed.
        host: String,
    },
    /// The key is not pinned and first-contact pinning is off, or the claimed
    /// host name is not a usable name.
    Unknown,
}

/// Who holds `key`, given the pinned `(HOST, KEY)` pairs and the host name
/// the caller claims. A key pinned for a host is that host whatever it
/// claims; a claimed host pinned to another key is a changed key; otherwise
/// the pair is pinned on first contact when `pin_new` allows it.
pub fn identify(
    pins: &[(String, [u8; 32])],
    claimed_host: &str,
    key: &[u8; 32],
    pin_new: bool,
) -> Identity {
    if let Some((host, _)) = pins.iter().find(|(_, k)| k == key) {
        return Identity::Known(host.clone());
    }
    let claimed = claimed_host.trim();
    if !is_host_name(claimed) {
        return Identity::Unknown;
    }
    if pins.iter().any(|(h, _)| h.eq_ignore_ascii_case(claimed)) {
        return Identity::KeyChanged {
            host: claimed.to_ascii_uppercase(),
        };
    }
    if pin_new {
        Identity::FirstContact(claimed.to_ascii_uppercase())
    } else {
        Identity::Unknown
    }
}

/// Whether `name` may be a pinned host's name: 1–15 ASCII letters, digits,
/// `-` or `_` (a NetBIOS computer name as this service writes it).
pub fn is_host_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads a trust file's text: one `HOST KEY` pair a line (`#` comments and
/// blank lines skipped); a line that is not such a pair is returned as an
/// error with its number, so a typo is not silently a missing pin.
pub fn parse_pins(
    text: &str,
    parse_key: impl Fn(&str) -> Option<[u8; 32]>,
) -> Result<Vec<(String, [u8; 32])>, usize> {
    let mut pins = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(host), Some(key), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(n + 1);
        };
        let key = parse_key(key).ok_or(n + 1)?;
        if !is_host_name(host) {
            return Err(n + 1);
        }
        pins.push((host.to_ascii_uppercase(), key));
    }
    Ok(pins)
}

/// How a received message is marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Delivered over the remote channel with the key pinned for `HOST`.
    Verified(String),
    /// Came by SMB or a MESSNGR datagram (or locally): nothing proves who
    /// sent it.
    Unverified,
    /// Unverified, but its sender name is one `host` uses verified.
    Claims {
        /// The claimed sender name.
        name: String,
        /// The host whose verified messages use it (or whose name it is).
        host: String,
    },
}

/// Whether an unverified message claiming `from` must be refused: `from`
/// matches one of the `require_verified_from` globs (`*` any run, `?` one
/// character, compared without ASCII case).
pub fn requires_verified(patterns: &[String], from: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, from))
}

/// `*`/`?` glob matching without ASCII case, in time linear in both lengths
/// times the number of `*` (the classic backtracking on the last star only).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_uppercase()).collect();
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_uppercase()).collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The sender names verified peers use, to flag unverified messages that
/// claim them: every pinned host's own name, and each sender name of a
/// verified message (at most [`MAX_NAMES`], the oldest kept).
#[derive(Debug, Clone, Default)]
pub struct Names {
    owners: HashMap<String, String>,
}

impl Names {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that `host` uses sender `name` verified (a pinned host's own
    /// name, or the sender of one of its verified messages). The first host
    /// to use a name keeps it.
    pub fn note(&mut self, name: &str, host: &str) {
        let key = name.trim().to_ascii_uppercase();
        if key.is_empty() || key.len() > MAX_NAME_LEN || host.len() > MAX_NAME_LEN {
            return;
        }
        if self.owners.len() >= MAX_NAMES && !self.owners.contains_key(&key) {
            return;
        }
        self.owners.entry(key).or_insert_with(|| host.to_owned());
    }

    /// How a message claiming `from` is marked, given the host that
    /// delivered it verified (`None`: it came unverified). A verified
    /// message teaches the table its sender name.
    pub fn mark(&mut self, from: &str, verified_host: Option<&str>) -> Mark {
        match verified_host {
            Some(host) => {
                self.note(from, host);
                Mark::Verified(host.to_owned())
            }
            None => match self.owners.get(&from.trim().to_ascii_uppercase()) {
                Some(host) => Mark::Claims {
                    name: from.to_owned(),
                    host: host.clone(),
                },
                None => Mark::Unverified,
            },
        }
    }
}

/// The text shown for a message's mark: `verified HOST`, `unverified`, or
/// `unverified: claims NAME, which HOST uses verified` (names sanitised).
pub fn mark_text(verified_host: Option<&str>, claimed_by: Option<&str>, from: &str) -> String {
    use crate::display::sanitize_name;
    match (verified_host, claimed_by) {
        (Some(host), _) => format!("verified {}", sanitize_name(host)),
        (None, Some(host)) => format!(
            "unverified: claims {}, which {} uses verified",
            sanitize_name(from),
            sanitize_name(host)
        ),
        (None, None) => "unverified".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> [u8; 32] {
        [b; 32]
    }

    #[test]
    fn keys_map_to_pinned_hosts_and_changed_keys_are_refused() {
        let pins = vec![("HOSTA".to_owned(), key(1))];
        assert_eq!(
            identify(&pins, "anything", &key(1), false),
            Identity::Known("HOSTA".into())
        );
        assert_eq!(
            identify(&pins, "hosta", &key(2), true),
            Identity::KeyChanged {
                host: "HOSTA".into()
            }
        );
        assert_eq!(
            identify(&pins, "hostc", &key(3), true),
            Identity::FirstContact("HOSTC".into())
        );
        assert_eq!(identify(&pins, "hostc", &key(3), false), Identity::Unknown);
        assert_eq!(
            identify(&pins, "bad name!", &key(3), true),
            Identity::Unknown
        );
        assert_eq!(identify(&pins, "", &key(3), true), Identity::Unknown);
    }

    #[test]
    fn trust_files_parse_or_name_the_bad_line() {
        let k = |s: &str| (s == "K1").then_some(key(1));
        assert_eq!(
            parse_pins("# pins\n\nhosta K1\n", k),
            Ok(vec![("HOSTA".to_owned(), key(1))])
        );
        assert_eq!(parse_pins("hosta K1\nhostb K2\n", k), Err(2));
        assert_eq!(parse_pins("hosta\n", k), Err(1));
        assert_eq!(parse_pins("hosta K1 extra\n", k), Err(1));
        assert_eq!(parse_pins("bad:host K1\n", k), Err(1));
    }

    #[test]
    fn globs_match_claimed_names_without_case() {
        let admin = vec!["ADMIN*".to_owned()];
        assert!(requires_verified(&admin, "ADMIN"));
        assert!(requires_verified(&admin, "administrator"));
        assert!(!requires_verified(&admin, "BOB"));
        assert!(!requires_verified(&admin, "XADMIN"));
        assert!(!requires_verified(&[], "ADMIN"));
        assert!(glob_match("a?c", "ABC"));
        assert!(!glob_match("a?c", "AC"));
        assert!(glob_match("*x*y", "axbxcy"));
        assert!(!glob_match("*x*y", "axbxc"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("", "a"));
    }

    #[test]
    fn unverified_messages_claiming_a_verified_name_are_flagged() {
        let mut names = Names::new();
        names.note("HOSTA", "HOSTA");
        assert_eq!(names.mark("BOB", None), Mark::Unverified);
        assert_eq!(
            names.mark("bob", Some("HOSTA")),
            Mark::Verified("HOSTA".into())
        );
        assert_eq!(
            names.mark("Bob", None),
            Mark::Claims {
                name: "Bob".into(),
                host: "HOSTA".into()
            }
        );
        assert!(matches!(names.mark("hosta", None), Mark::Claims { .. }));
        // The first host to use a name keeps it.
        names.note("BOB", "HOSTC");
        assert!(matches!(names.mark("BOB", None), Mark::Claims { host, .. } if host == "HOSTA"));
        assert_eq!(
            mark_text(None, Some("HOSTA"), "BOB\x1b[2J"),
            format!(
                "unverified: claims {}, which HOSTA uses verified",
                crate::display::sanitize_name("BOB\x1b[2J")
            )
        );
        assert_eq!(mark_text(Some("HOSTA"), None, "BOB"), "verified HOSTA");
        assert_eq!(mark_text(None, None, "BOB"), "unverified");
    }

    #[test]
    fn the_table_of_names_is_bounded() {
        let mut names = Names::new();
        for i in 0..MAX_NAMES + 10 {
            names.note(&format!("N{i}"), "H");
        }
        assert_eq!(names.owners.len(), MAX_NAMES);
        names.note(&"x".repeat(MAX_NAME_LEN + 1), "H");
        assert_eq!(names.owners.len(), MAX_NAMES);
    }

    proptest::proptest! {
        #[test]
        fn glob_and_parse_never_panic(p in ".{0,20}", t in ".{0,40}", file in ".{0,200}") {
            let _ = glob_match(&p, &t);
            let _ = parse_pins(&file, |_| Some([0; 32]));
            proptest::prop_assert!(glob_match(&t.replace(['*', '?'], ""), &t.replace(['*', '?'], "")));
        }
    }
}
