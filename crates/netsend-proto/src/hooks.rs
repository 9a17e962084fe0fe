//! Delivery hooks, the pure part: which hooks a message triggers, the argv of
//! an exec hook, and what an HTTP hook posts.
//!
//! Placeholders are replaced only where an argument is exactly `{from}`,
//! `{to}`, `{id}` or `{peer}`: a value is always one whole argument and never
//! passes through a shell, so nothing in a sender's name or text can become
//! a command. The text itself goes to the program's standard input.

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

/// The argv of an exec hook: each argument that is exactly a placeholder is
/// replaced by its value; every other argument is passed unchanged.
pub fn substitute_argv(argv: &[String], message: &HookMessage<'_>) -> Vec<String> {
    argv.iter()
        .map(|arg| match arg.as_str() {
            "{from}" => message.from.to_owned(),
            "{to}" => message.to.to_owned(),
            "{id}" => message.id.to_string(),
            "{peer}" => message.peer.to_owned(),
            _ => arg.clone(),
        })
        .collect()
}

/// The title of a notification: `Message from FROM to TO`, with control
/// characters (which an HTTP header may not hold) replaced by spaces.
pub fn title(message: &HookMessage<'_>) -> String {
    format!("Message from {} to {}", message.from, message.to)
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
        let argv: Vec<String> = ["/bin/notify", "{from}", "x{to}", "{id}", "{peer}", "{text}"]
            .map(String::from)
            .to_vec();
        let m = message("$(rm -rf /); `id`", "hello");
        assert_eq!(
            substitute_argv(&argv, &m),
            [
                "/bin/notify",
                "$(rm -rf /); `id`",
                "x{to}",
                "7",
                "192.0.2.5:1234",
                "{text}"
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
    }
}
