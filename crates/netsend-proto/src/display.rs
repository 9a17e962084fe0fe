//! What people see: a received message made safe for terminals and desktop
//! notifications, and the texts shown there.
//!
//! Message text comes from the network, so a sender could otherwise drive the
//! recipient's terminal: retitle it, move the cursor, redefine keys, or forge
//! another program's prompt (util-linux `wall` had this flaw, CVE-2024-28085
//! "WallEscape"). [`sanitize`] keeps printable text, `\n` and tabs (as spaces)
//! and removes every control character and every escape sequence whole.

use std::fmt::Write as _;

/// The escape character that starts 7-bit control sequences.
const ESC: char = '\x1b';
/// Columns between tab stops when a tab is turned into spaces.
const TAB_WIDTH: usize = 8;

/// What the sanitiser is in the middle of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Ordinary text.
    Text,
    /// After `ESC`.
    Escape,
    /// After `ESC` and intermediate bytes (0x20–0x2F): up to a final byte.
    EscapeIntermediate,
    /// Inside a control sequence (`ESC [` or U+009B): up to a final byte.
    Csi,
    /// Inside a command string (OSC, DCS, SOS, PM, APC): up to its terminator.
    CommandString {
        /// OSC strings may also end with BEL.
        bel_ends: bool,
    },
    /// Inside a command string, after an `ESC` (ST is `ESC \`).
    CommandStringEscape {
        /// As in `CommandString`.
        bel_ends: bool,
    },
    /// After `\r`: a following `\n` belongs to the same line break.
    CarriageReturn,
}

/// `text` without control characters or escape sequences, with line breaks
/// (CRLF, CR and the messenger's 0x14) made `\n` and tabs turned into spaces
/// up to the next multiple of 8 columns.
///
/// Removed: C0 controls other than `\n` and `\t`, DEL, the C1 controls
/// U+0080–U+009F, bidirectional overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069, which would reorder what is shown), and whole escape
/// sequences: CSI (`ESC [` or U+009B, parameters, intermediates, final byte),
/// OSC (`ESC ]` or U+009D, up to BEL or ST), DCS, SOS, PM and APC strings
/// (`ESC P`, `ESC X`, `ESC ^`, `ESC _` or U+0090, U+0098, U+009E, U+009F, up to
/// ST) and the two-byte `ESC x` forms. A sequence cut off by the end of the
/// text is dropped as far as it goes. The result contains no control character
/// except `\n`, and sanitising it again changes nothing.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut state = State::Text;
    let mut column = 0usize;
    for c in text.chars() {
        state = match state {
            State::Text | State::CarriageReturn => {
                if state == State::CarriageReturn && c == '\n' {
                    State::Text
                } else {
                    text_char(c, &mut out, &mut column)
                }
            }
            State::Escape => match c {
                '[' => State::Csi,
                ']' => State::CommandString { bel_ends: true },
                'P' | 'X' | '^' | '_' => State::CommandString { bel_ends: false },
                '\x20'..='\x2f' => State::EscapeIntermediate,
                '\x30'..='\x7e' => State::Text,
                // Not a sequence after all: the ESC goes, the character stays.
                _ => text_char(c, &mut out, &mut column),
            },
            State::EscapeIntermediate => match c {
                '\x20'..='\x2f' => State::EscapeIntermediate,
                '\x30'..='\x7e' => State::Text,
                _ => text_char(c, &mut out, &mut column),
            },
            State::Csi => match c {
                // Parameter and intermediate bytes.
                '\x20'..='\x3f' => State::Csi,
                // The final byte ends it.
                '\x40'..='\x7e' => State::Text,
                // Anything else aborts the sequence and is itself text.
                _ => text_char(c, &mut out, &mut column),
            },
            State::CommandString { bel_ends } => match c {
                '\x07' if bel_ends => State::Text,
                '\u{9c}' => State::Text,
                ESC => State::CommandStringEscape { bel_ends },
                _ => State::CommandString { bel_ends },
            },
            State::CommandStringEscape { bel_ends } => match c {
                '\\' => State::Text,
                ESC => State::CommandStringEscape { bel_ends },
                _ => State::CommandString { bel_ends },
            },
        };
    }
    out
}

/// Handles one character of ordinary text; returns the next state.
fn text_char(c: char, out: &mut String, column: &mut usize) -> State {
    match c {
        '\n' | '\x14' => {
            out.push('\n');
            *column = 0;
            State::Text
        }
        '\r' => {
            out.push('\n');
            *column = 0;
            State::CarriageReturn
        }
        '\t' => {
            let spaces = TAB_WIDTH - *column % TAB_WIDTH;
            out.extend(std::iter::repeat_n(' ', spaces));
            *column += spaces;
            State::Text
        }
        ESC => State::Escape,
        '\u{9b}' => State::Csi,
        '\u{9d}' => State::CommandString { bel_ends: true },
        '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => State::CommandString { bel_ends: false },
        c if c.is_control() || is_bidi_control(c) => State::Text,
        c => {
            out.push(c);
            *column += 1;
            State::Text
        }
    }
}

/// Bidirectional embedding, override and isolate controls.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A name (sender, recipient, host) made safe for one line: [`sanitize`]d,
/// line breaks and runs of spaces made single spaces, trimmed.
pub fn sanitize_name(name: &str) -> String {
    sanitize(name)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first line of a text, [`sanitize`]d, for a one-line listing.
pub fn sanitize_first_line(text: &str) -> String {
    sanitize(text).lines().next().unwrap_or("").to_owned()
}

/// A multi-line text that is not a message (an error detail that may quote
/// peer input, a log tail) made safe for a terminal: [`sanitize`]d, each line
/// after the first indented by `indent`, so no line can pass for one of the
/// program's own (`netsend: ...`, `  hint: ...`).
pub fn sanitize_detail(text: &str, indent: &str) -> String {
    let clean = sanitize(text);
    let mut lines = clean.trim_end_matches('\n').split('\n');
    let mut out = lines.next().unwrap_or("").to_owned();
    for line in lines {
        out.push('\n');
        out.push_str(indent);
        out.push_str(line);
    }
    out
}

/// Whether `c` must never appear raw in output a machine reads back for
/// people (JSON, log lines): the C0 controls, DEL, the C1 controls
/// U+0080–U+009F, bidirectional overrides and isolates, and the Unicode line
/// and paragraph separators U+2028 and U+2029.
pub fn is_unsafe_raw(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `text` for one log field or line: every [`is_unsafe_raw`] character is
/// written as an escape (`\n`, `\r`, `\t`, else `\u{XX}`), as Rust's
/// `Debug` does, so a name or text with CR, LF or escape sequences can
/// neither start a forged log line nor drive the terminal of whoever reads
/// the log. Everything else is kept.
pub fn escape_log(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_raw(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// A log field value shown through [`escape_log`]: `from = %LogSafe(&name)`.
#[derive(Debug, Clone, Copy)]
pub struct LogSafe<T>(pub T);

impl<T: std::fmt::Display> std::fmt::Display for LogSafe<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escape_log(&self.0.to_string()))
    }
}

/// A wall-clock time of day, as shown with a message (the shell supplies it
/// in the recipient's local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// A stored message as it is to be shown; every field is as received (the
/// texts below sanitise them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown<'a> {
    /// The sender's claimed name.
    pub from: &'a str,
    /// The alias it was sent to.
    pub to: &'a str,
    /// The text.
    pub text: &'a str,
    /// Whether it was a broadcast (`NET SEND *`, `/DOMAIN`).
    pub broadcast: bool,
    /// When it was received, local time.
    pub time: TimeOfDay,
    /// The host whose pinned key delivered it; `None`: unverified.
    pub verified_host: Option<&'a str>,
    /// Unverified, but its sender name is one this host uses verified.
    pub claimed_by: Option<&'a str>,
}

impl Shown<'_> {
    /// Who vouches for the sender: `verified HOST`, `unverified`, or
    /// `unverified: claims NAME, which HOST uses verified`
    /// ([`crate::trust::mark_text`], sanitised).
    pub fn trust(&self) -> String {
        crate::trust::mark_text(self.verified_host, self.claimed_by, self.from)
    }

    /// The heading: `Message from FROM to TO` (for a broadcast too; its
    /// notification is critical and its terminal banner says `(broadcast)`),
    /// or `Alert from FROM to TO` for an Alerter's message
    /// ([`crate::alert::is_alert`]).
    pub fn summary(&self) -> String {
        format!(
            "{} from {} to {}",
            if self.is_alert() { "Alert" } else { "Message" },
            sanitize_name(self.from),
            sanitize_name(self.to)
        )
    }

    /// Whether the text is an Alerter's message (its first line is the
    /// alert mark).
    pub fn is_alert(&self) -> bool {
        crate::alert::is_alert(self.text)
    }

    /// The notification body: the sanitised text, a blank line and
    /// `Received at HH:MM` (`Broadcast, received at HH:MM` for a broadcast). With `markup`, `&`, `<` and `>` are escaped, for
    /// notification servers that read the body as markup (capability
    /// `body-markup`); a text can then not add links, images or formatting.
    pub fn notification_body(&self, markup: bool) -> String {
        let received = if self.broadcast {
            "Broadcast, received"
        } else {
            "Received"
        };
        let body = format!(
            "{}\n\n{received} at {} ({})",
            sanitize(self.text).trim_end_matches('\n'),
            self.time,
            self.trust()
        );
        if markup {
            escape_markup(&body)
        } else {
            body
        }
    }

    /// Whether a notification should be critical (stays until dismissed):
    /// broadcasts and alerts are.
    pub fn is_critical(&self) -> bool {
        self.broadcast || self.is_alert()
    }

    /// What a terminal is sent, like write(1) and wall(1), every line ending
    /// in CRLF (a terminal in raw mode then still starts each line at the left):
    ///
    /// ```text
    /// \r\n
    /// BEL Message from FROM to TO on HOST at HH:MM ...\r\n
    /// text line 1\r\n
    /// text line 2\r\n
    /// EOF\r\n
    /// ```
    ///
    /// (`... at HH:MM (broadcast) ...` for a broadcast; the BEL rings the
    /// bell once). The text and names are sanitised, so the only control bytes are
    /// the leading BEL and the CR LF line ends.
    pub fn terminal_text(&self, host: &str) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "\r\n\x07{} on {} at {}{} ({}) ...\r\n",
            self.summary(),
            sanitize_name(host),
            self.time,
            if self.broadcast { " (broadcast)" } else { "" },
            self.trust()
        );
        let text = sanitize(self.text);
        for line in text.trim_end_matches('\n').split('\n') {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str("EOF\r\n");
        out
    }
}

/// The one-line hint how to answer message `id` (a number, or `ID` under a
/// listing), under listings, a message read in full and notifications.
pub fn reply_hint(id: impl std::fmt::Display) -> String {
    format!("reply: netsend reply {id} TEXT")
}

/// Escapes `&`, `<` and `>` for the notification body markup.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The device of a utmp line (`pts/7`, `tty1`): `/dev/` + the line, only for
/// `ttyNAME` and `pts/NUMBER` with ASCII letters and digits; anything else
/// (`..`, other directories, a path of its own, an empty line) is `None`.
pub fn terminal_device(line: &str) -> Option<String> {
    let valid = if let Some(n) = line.strip_prefix("pts/") {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    } else if let Some(rest) = line.strip_prefix("tty") {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    } else {
        false
    };
    valid.then(|| format!("/dev/{line}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escape_sequences_are_removed_whole() {
        let cases = [
            ("red \x1b[31mtext\x1b[0m", "red text"),
            ("\x1b]0;owned title\x07after", "after"),
            ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
            ("\x1bP+q544e\x1b\\dcs", "dcs"),
            ("\x1b_apc\x1b\\ok", "ok"),
            ("\x1b^pm\u{9c}ok", "ok"),
            ("\x1bXsos\x1b\\ok", "ok"),
            ("\x1b(Bcharset \x1b7save\x1b8", "charset save"),
            ("\u{9b}2Jclear", "clear"),
            ("\u{9d}0;title\u{9c}shown", "shown"),
            ("\u{90}dcs\u{9c}x\u{85}y", "xy"),
            ("bell\x07 nul\0 del\x7f bs\x08", "bell nul del bs"),
            ("\x1b[1;2", ""),
            ("\x1b]unterminated", ""),
            ("esc at end\x1b", "esc at end"),
            ("\x1b\u{e9}t\u{e9}", "\u{e9}t\u{e9}"),
            ("\x1b[31\nnext", "\nnext"),
            ("\u{202e}gnp.exe", "gnp.exe"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "input {input:?}");
        }
    }

    #[test]
    fn line_breaks_become_newlines_and_tabs_spaces() {
        assert_eq!(sanitize("a\r\nb\rc\nd\x14e"), "a\nb\nc\nd\ne");
        assert_eq!(sanitize("a\r\r\nb"), "a\n\nb");
        assert_eq!(sanitize("a\tb\n\tc"), "a       b\n        c");
        assert_eq!(sanitize("Grüße\t€"), "Grüße   €");
    }

    #[test]
    fn names_are_single_lines() {
        assert_eq!(sanitize_name(" EVIL\nroot@host \x1b[2J "), "EVIL root@host");
    }

    fn sample() -> Shown<'static> {
        Shown {
            from: "ALICE",
            to: "BOB",
            text: "Lunch?\r\nAt <b>noon</b> & \x1b[5mnow\x1b[0m\n",
            broadcast: false,
            time: TimeOfDay { hour: 9, minute: 5 },
            verified_host: None,
            claimed_by: None,
        }
    }

    #[test]
    fn terminal_text_is_a_write_style_banner() {
        assert_eq!(
            sample().terminal_text("HOST"),
            "\r\n\x07Message from ALICE to BOB on HOST at 09:05 (unverified) ...\r\n\
             Lunch?\r\nAt <b>noon</b> & now\r\nEOF\r\n"
        );
        let broadcast = Shown {
            broadcast: true,
            ..sample()
        };
        assert!(broadcast.terminal_text("HOST").starts_with(
            "\r\n\x07Message from ALICE to BOB on HOST at 09:05 (broadcast) (unverified) ...\r\n"
        ));
        assert!(broadcast.is_critical());
        assert!(broadcast
            .notification_body(false)
            .ends_with("\n\nBroadcast, received at 09:05 (unverified)"));
        let verified = Shown {
            verified_host: Some("HOSTA\x1b[2J"),
            ..sample()
        };
        let banner = verified.terminal_text("HOST");
        assert!(
            banner.starts_with(&format!(
                "\r\n\x07Message from ALICE to BOB on HOST at 09:05 (verified {}) ...\r\n",
                sanitize_name("HOSTA\x1b[2J")
            )),
            "{banner:?}"
        );
        assert!(!banner.contains('\x1b'));
        let spoofed = Shown {
            claimed_by: Some("HOSTA"),
            ..sample()
        };
        assert!(spoofed.notification_body(false).ends_with(
            "\n\nReceived at 09:05 (unverified: claims ALICE, which HOSTA uses verified)"
        ));
    }

    #[test]
    fn alerts_are_headed_as_alerts_and_critical() {
        let alert = Shown {
            from: "HOSTA",
            to: "OPS",
            text: "*** ALERT ADMIN from disk on HOSTA ***\nDrive / is nearly full.",
            broadcast: false,
            time: TimeOfDay { hour: 9, minute: 5 },
            verified_host: None,
            claimed_by: None,
        };
        assert_eq!(alert.summary(), "Alert from HOSTA to OPS");
        assert!(alert.is_critical());
        assert!(alert.terminal_text("HOSTB").starts_with(
            "\r\n\x07Alert from HOSTA to OPS on HOSTB at 09:05 (unverified) ...\r\n*** ALERT ADMIN"
        ));
        assert!(!sample().is_critical());
    }

    #[test]
    fn notification_texts() {
        let shown = sample();
        assert_eq!(shown.summary(), "Message from ALICE to BOB");
        assert_eq!(
            shown.notification_body(false),
            "Lunch?\nAt <b>noon</b> & now\n\nReceived at 09:05 (unverified)"
        );
        assert_eq!(
            shown.notification_body(true),
            "Lunch?\nAt &lt;b&gt;noon&lt;/b&gt; &amp; now\n\nReceived at 09:05 (unverified)"
        );
        assert!(!shown.is_critical());
    }

    #[test]
    fn only_plain_terminal_lines_are_devices() {
        assert_eq!(terminal_device("pts/7").as_deref(), Some("/dev/pts/7"));
        assert_eq!(terminal_device("tty1").as_deref(), Some("/dev/tty1"));
        assert_eq!(terminal_device("ttyS0").as_deref(), Some("/dev/ttyS0"));
        for bad in [
            "",
            "pts/",
            "pts/../sda",
            "../sda",
            "tty",
            "tty1/..",
            "sda",
            ":0",
            "pts/1a",
            "tty/1",
            "/dev/tty1",
            "pts//1",
        ] {
            assert_eq!(terminal_device(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn details_and_first_lines_are_clean() {
        assert_eq!(sanitize_first_line("a\x1b[2Jb\nsecond"), "ab");
        assert_eq!(
            sanitize_detail("x\x1b]0;t\x07y\nnetsend: fake\n", "    "),
            "xy\n    netsend: fake"
        );
    }

    #[test]
    fn log_fields_escape_line_breaks_and_controls() {
        assert_eq!(
            escape_log("EVE\r\nevent=\"drop\" \x1b[2J\u{9b}\u{202e}\u{2028}ok"),
            "EVE\\r\\nevent=\"drop\" \\u{1b}[2J\\u{9b}\\u{202e}\\u{2028}ok"
        );
        assert_eq!(LogSafe("a\nb").to_string(), "a\\nb");
    }

    proptest! {
        #[test]
        fn log_escapes_leave_nothing_unsafe(s in any::<String>()) {
            let e = escape_log(&s);
            prop_assert!(!e.chars().any(is_unsafe_raw), "{e:?}");
            let shown = |c: char| c.is_control() || is_bidi_control(c);
            prop_assert!(!sanitize_detail(&s, "  ").chars().any(|c| c != '\n' && shown(c)));
            prop_assert!(!sanitize_first_line(&s).chars().any(shown));
        }

        #[test]
        fn output_has_no_control_but_newline(s in any::<String>()) {
            let clean = sanitize(&s);
            prop_assert!(clean.chars().all(|c| c == '\n' || !(c.is_control() || is_bidi_control(c))));
            prop_assert_eq!(sanitize(&clean), clean.clone());
        }

        #[test]
        fn escape_heavy_input_is_clean_and_idempotent(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("\x1b".to_owned()), Just("[".to_owned()), Just("]".to_owned()),
                    Just("\x07".to_owned()), Just("\\".to_owned()), Just("\u{9b}".to_owned()),
                    Just("\u{9c}".to_owned()), Just("\r".to_owned()), Just("\n".to_owned()),
                    Just("\t".to_owned()), Just("P".to_owned()), "[ -~]{0,3}",
                ],
                0..40,
            )
        ) {
            let s = parts.concat();
            let clean = sanitize(&s);
            prop_assert!(clean.chars().all(|c| c == '\n' || !c.is_control()));
            prop_assert_eq!(sanitize(&clean), clean.clone());
            let terminal = Shown { text: &s, from: &s, to: "X", broadcast: false, time: TimeOfDay { hour: 0, minute: 0 }, verified_host: Some(&s), claimed_by: Some(&s) }
                .terminal_text(&s);
            // Only the BEL and CR LF line ends are control characters.
            let without_line_ends = terminal.replace("\r\n", "");
            prop_assert_eq!(without_line_ends.chars().filter(|c| c.is_control()).collect::<String>(), "\x07");
        }
    }
}
