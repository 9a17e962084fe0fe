//! Delivery hooks, the pure part: which hooks a message triggers, the argv and
//! environment of an exec hook, and what an HTTP hook posts.
//!
//! An exec hook learns the sender, alias, id and peer from the environment
//! variables `NETSEND_FROM`, `NETSEND_TO`, `NETSEND_ID` and `NETSEND_PEER`.
//! In argv only the values that cannot start with `-` are substituted, where
//! an argument is exactly `{id}` or `{peer}`: a sender name such as
//! `--output=/x` or `-f/etc/shadow` would be read as an option by the
//! program's getopt, so `{from}` and `{to}` are refused in argv
//! ([`check_argv`]). Nothing passes through a shell, so nothing in a
//! sender's name or text can become a command. The text itself goes to the
//! program's standard input.

/// The facts about a stored message a hook may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookMessage<'a> {
    /// The inbox id.
    pub id: i64,
    /// The claimed sender name.
    pub from: &'a str,
    /// The alias it was sent to.
    pub to: &'a str,
    /// The source address (`IP:port`).
    pub peer: &'a str,
    /// The text.
    pub text: &'a str,
}

/// Whether a hook for `pattern` (an alias, any case, or `*`) fires for a
/// message to `to`.
pub fn alias_matches(pattern: &str, to: &str) -> bool {
    pattern == "*" || pattern.eq_ignore_ascii_case(to.trim())
}

/// Whether an exec hook's argv is acceptable: `{from}` and `{to}`, whose
/// values a sender or a local user chooses and which may start with `-`, are
/// refused as arguments (the error says to read `NETSEND_FROM` /
/// `NETSEND_TO` instead).
pub fn check_argv(argv: &[String]) -> Result<(), String> {
    for arg in argv {
        let var = match arg.as_str() {
            "{from}" => "NETSEND_FROM",
            "{to}" => "NETSEND_TO",
            _ => continue,
        };
        return Err(format!(
            "{arg} is not substituted in exec arguments (a name may start with `-` and \
             become an option); read the environment variable {var} instead"
        ));
    }
    Ok(())
}

/// The argv of an exec hook: an argument that is exactly `{id}` or `{peer}`
/// (values that never start with `-`) is replaced by its value; every other
/// argument is passed unchanged.
pub fn substitute_argv(argv: &[String], message: &HookMessage<'_>) -> Vec<String> {
    argv.iter()
        .map(|arg| match arg.as_str() {
            "{id}" => message.id.to_string(),
            "{peer}" => message.peer.to_owned(),
            _ => arg.clone(),
        })
        .collect()
}

/// The environment an exec hook gets besides `PATH`: `NETSEND_FROM` (the
/// claimed sender), `NETSEND_TO` (the alias), `NETSEND_ID` (the inbox id) and
/// `NETSEND_PEER` (the sender's `IP:port`), each exactly as stored.
pub fn environment(message: &HookMessage<'_>) -> [(&'static str, String); 4] {
    [
        ("NETSEND_FROM", message.from.to_owned()),
        ("NETSEND_TO", message.to.to_owned()),
        ("NETSEND_ID", message.id.to_string()),
        ("NETSEND_PEER", message.peer.to_owned()),
    ]
}

/// The title of a notification: `Message from FROM to TO` (`Alert from`
/// for an Alerter's message, [`crate::alert::is_alert`]), with control
/// characters (which an HTTP header may not hold) replaced by spaces.
pub fn title(message: &HookMessage<'_>) -> String {
    let kind = if crate::alert::is_alert(message.text) {
        "Alert"
    } else {
        "Message"
    };
    format!("{kind} from {} to {}", message.from, message.to)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(from: &'a str, text: &'a str) -> HookMessage<'a> {
        HookMessage {
            id: 7,
            from,
            to: "ALICE",
            peer: "192.0.2.5:1234",
            text,
        }
    }

    #[test]
    fn only_whole_arguments_are_substituted() {
        let argv: Vec<String> = [
            "/bin/notify",
            "x{from}",
            "x{to}",
            "{id}",
            "{peer}",
            "{text}",
        ]
        .map(String::from)
        .to_vec();
        let m = message("--output=/x", "hello");
        assert_eq!(check_argv(&argv), Ok(()));
        assert_eq!(
            substitute_argv(&argv, &m),
            [
                "/bin/notify",
                "x{from}",
                "x{to}",
                "7",
                "192.0.2.5:1234",
                "{text}"
            ]
        );
    }

    #[test]
    fn names_reach_hooks_in_the_environment_never_as_arguments() {
        for arg in ["{from}", "{to}"] {
            let argv: Vec<String> = ["/bin/notify", arg].map(String::from).to_vec();
            let e = check_argv(&argv).unwrap_err();
            assert!(e.contains("NETSEND_"), "{e}");
        }
        let m = message("-f/etc/shadow", "hi");
        assert_eq!(
            environment(&m),
            [
                ("NETSEND_FROM", "-f/etc/shadow".to_owned()),
                ("NETSEND_TO", "ALICE".to_owned()),
                ("NETSEND_ID", "7".to_owned()),
                ("NETSEND_PEER", "192.0.2.5:1234".to_owned()),
            ]
        );
    }

    #[test]
    fn aliases_match_in_any_case_or_by_star() {
        assert!(alias_matches("alice", "ALICE"));
        assert!(alias_matches("*", "BOB"));
        assert!(!alias_matches("ALICE", "ALICEX"));
    }

    #[test]
    fn titles_hold_no_control_characters() {
        assert_eq!(
            title(&message("EVE\r\nX-Evil: 1", "")),
            "Message from EVE  X-Evil: 1 to ALICE"
        );
        let alert = HookMessage {
            text: "*** ALERT ADMIN from disk on HOSTA ***\nDrive / is nearly full.",
            ..message("HOSTA", "")
        };
        assert_eq!(title(&alert), "Alert from HOSTA to ALICE");
    }
}
