//! Forwarding an alias to another host (`netsend name ALIAS /forward:HOST`,
//! Windows' `NET FORWARD`), the pure part: which targets are refused and
//! which messages are passed on.
//!
//! Loop rule: a forwarded copy starts with the line `(forwarded by HOST)`,
//! and a message that starts with such a line is never forwarded again. So a
//! message travels at most one forwarding hop, whatever the hosts' forwards
//! form (A to B and B to A, or longer cycles): no loop can carry it further.
//! A forward to this host itself (its computer name, an alias it holds, one of
//! its own or a loopback address) is refused when it is set, and a target
//! that resolves to our own session address when a message arrives is not
//! sent to.

use std::net::{Ipv4Addr, SocketAddrV4};

/// How the first line of a forwarded copy starts.
const MARKER_START: &str = "(forwarded by ";

/// The text of the forwarded copy: the marker line naming the forwarding
/// host (`by`, its computer name), then the original text.
pub fn forwarded_text(by: &str, text: &str) -> String {
    format!("{MARKER_START}{by})\n{text}")
}

/// Whether `text` is a forwarded copy (its first line is the marker).
pub fn is_forwarded(text: &str) -> bool {
    let first = text.lines().next().unwrap_or("");
    first.starts_with(MARKER_START) && first.ends_with(')')
}

/// Why a forward target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardRefusal {
    /// The target is empty.
    #[error("no host given")]
    Empty,
    /// The target is this host's computer name or an alias it holds.
    #[error("{0} is this host's own name: messages would come back here")]
    OwnName(String),
    /// The target is one of this host's addresses (or loopback).
    #[error("{0} is this host's own address: messages would come back here")]
    OwnAddress(Ipv4Addr),
}

/// Checks a forward target (a NetBIOS name or an IPv4 address) against this
/// host's own names and addresses.
pub fn check_target(
    target: &str,
    own_names: &[String],
    own_addresses: &[Ipv4Addr],
) -> Result<(), ForwardRefusal> {
    let target = target.trim();
    if target.is_empty() {
        return Err(ForwardRefusal::Empty);
    }
    if let Ok(ip) = target.parse::<Ipv4Addr>() {
        return if ip.is_loopback() || ip.is_unspecified() || own_addresses.contains(&ip) {
            Err(ForwardRefusal::OwnAddress(ip))
        } else {
            Ok(())
        };
    }
    match own_names.iter().find(|n| n.eq_ignore_ascii_case(target)) {
        Some(name) => Err(ForwardRefusal::OwnName(name.clone())),
        None => Ok(()),
    }
}

/// What to do with a stored message to a forwarded alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardDecision {
    /// Send the copy to the target.
    Forward,
    /// The message is itself a forwarded copy: it stays here.
    AlreadyForwarded,
    /// The target resolved to our own session service: it stays here.
    TargetIsUs,
}

/// Decides whether a stored message goes on to the resolved `target`
/// session address; `own` lists our session service's addresses.
pub fn decide(text: &str, target: SocketAddrV4, own: &[SocketAddrV4]) -> ForwardDecision {
    if is_forwarded(text) {
        ForwardDecision::AlreadyForwarded
    } else if own.contains(&target) {
        ForwardDecision::TargetIsUs
    } else {
        ForwardDecision::Forward
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: [Ipv4Addr; 1] = [Ipv4Addr::new(192, 0, 2, 10)];

    #[test]
    fn a_forwarded_copy_is_never_forwarded_again() {
        let copy = forwarded_text("HOSTA", "hello\nworld");
        assert_eq!(copy, "(forwarded by HOSTA)\nhello\nworld");
        assert!(is_forwarded(&copy));
        let target = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 30), 139);
        let own = [SocketAddrV4::new(OURS[0], 139)];
        assert_eq!(
            decide(&copy, target, &own),
            ForwardDecision::AlreadyForwarded
        );
        assert_eq!(decide("hello", target, &own), ForwardDecision::Forward);
        assert_eq!(decide("hello", own[0], &own), ForwardDecision::TargetIsUs);
        // Another service on the same address (another port) is not us.
        let neighbour = SocketAddrV4::new(OURS[0], 1139);
        assert_eq!(decide("hello", neighbour, &own), ForwardDecision::Forward);
        assert!(!is_forwarded("(forwarded by nobody"));
        assert!(!is_forwarded("hi (forwarded by X)"));
    }

    #[test]
    fn targets_naming_ourselves_are_refused() {
        let names = ["HOSTA".to_owned(), "ALICE".to_owned()];
        assert_eq!(
            check_target("hosta", &names, &OURS),
            Err(ForwardRefusal::OwnName("HOSTA".into()))
        );
        assert!(check_target("192.0.2.10", &names, &OURS).is_err());
        assert!(check_target("127.0.0.2", &names, &OURS).is_err());
        assert!(check_target(" ", &names, &OURS).is_err());
        assert_eq!(check_target("HOSTB", &names, &OURS), Ok(()));
        assert_eq!(check_target("192.0.2.11", &names, &OURS), Ok(()));
    }
}
