//! The popup window's state and key handling, with no terminal and no
//! socket: [`App::handle`] takes an [`Event`] (a key, messages that
//! arrived, the answer to a request) and changes the state, returning the
//! [`Effect`]s (requests to the service, quitting) the I/O loop carries out.
//! Everything a peer wrote is sanitised where the state is turned into
//! lines ([`App::rows`], [`App::view_lines`], [`App::status_line`]), so the
//! drawing code only places text it is given.

use std::collections::BTreeSet;

use netsend_control::types::StoredMessage;
use netsend_proto::display::{sanitize, sanitize_first_line, sanitize_name};
use netsend_wire::status::NetApiStatus;

/// Most messages the window holds; older ones leave the list (they stay in
/// the inbox, where `netsend inbox` lists them).
pub(crate) const MAX_LISTED: usize = 1000;
/// Most names offered for completion.
const MAX_NAMES: usize = 512;
/// Longest name typed in the "To" field (a NetBIOS name is 15 bytes; a
/// `/DOMAIN:NAME` target a little more).
const MAX_TO_LEN: usize = 64;
/// Longest text typed (the service's own limit is checked there).
const MAX_TEXT_LEN: usize = 4096;

/// A key, as the window understands it (the I/O loop translates the
/// terminal's events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// A printable character.
    Char(char),
    /// Enter.
    Enter,
    /// Ctrl-J: a line break inside a text.
    NewLine,
    /// Escape.
    Esc,
    /// Tab: name completion.
    Tab,
    /// Backspace.
    Backspace,
    /// Cursor up.
    Up,
    /// Cursor down.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
    /// Ctrl-C: quit from anywhere.
    Interrupt,
}

/// A failure the status line shows: a NERR/Win32 code and what it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The code.
    pub(crate) status: NetApiStatus,
    /// The detail, as the service or client said it (sanitised when shown).
    pub(crate) detail: String,
}

/// Something that happened outside the window.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A key was pressed.
    Key(Key),
    /// Messages of the first listing (`initial`) or new ones that arrived,
    /// oldest first.
    Messages {
        /// The listing made when the window opened, not arrivals.
        initial: bool,
        /// The messages.
        messages: Vec<StoredMessage>,
    },
    /// Names to complete from (aliases, whom we sent to, whatever LAN list
    /// there is).
    Names(Vec<String>),
    /// A message was opened and marked read: its new state.
    Opened(Result<StoredMessage, Problem>),
    /// A message was deleted (or hidden from us).
    Deleted(Result<i64, Problem>),
    /// A message went out: to whom and where, for the status line.
    Sent(Result<String, Problem>),
    /// The service stopped answering (or answers again: `None`).
    Connection(Option<Problem>),
}

/// What the I/O loop is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Open message `id`: read it and mark it read (`InboxRead`).
    Open(i64),
    /// Record that message `id` was shown (it arrived while open).
    Shown(i64),
    /// Delete message `id`.
    Delete(i64),
    /// Send `text` to `to`.
    Send {
        /// The recipient name.
        to: String,
        /// The text.
        text: String,
    },
    /// Answer message `id` with `text` (to its sender, at the host it came
    /// from).
    Reply {
        /// The message answered.
        id: i64,
        /// The text.
        text: String,
    },
    /// Leave the window.
    Quit,
}

/// Which field of a message being written has the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// The recipient.
    To,
    /// The text.
    Text,
}

/// A message being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draft {
    /// The message answered, for a reply.
    pub(crate) reply_to: Option<i64>,
    /// The recipient (for a reply: the sender answered, fixed).
    pub(crate) to: String,
    /// The text so far.
    pub(crate) text: String,
    /// Where the cursor is.
    pub(crate) field: Field,
    /// Candidates of the last Tab that matched several names, and which was
    /// offered last (Tab again goes to the next).
    cycle: Option<(Vec<String>, usize)>,
}

/// What the window shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The message list.
    List,
    /// One message, scrolled down by this many lines.
    View {
        /// The message id.
        id: i64,
        /// Lines scrolled.
        scroll: u16,
    },
    /// Writing a message; Esc goes back to `back`.
    Compose {
        /// The draft.
        draft: Draft,
        /// Where Esc or sending returns to.
        back: Box<Self>,
    },
    /// Asking whether to delete message `id`.
    ConfirmDelete {
        /// The message id.
        id: i64,
        /// Where the answer returns to (the list, or the message's view).
        back: Box<Self>,
    },
}

/// What the status line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// Nothing.
    Idle,
    /// A note (something done, a question).
    Note(String),
    /// A failure.
    Failed(Problem),
}

/// One row of the message list, every field sanitised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// The message id.
    pub(crate) id: i64,
    /// Whether it is unread.
    pub(crate) unread: bool,
    /// When it arrived (local time).
    pub(crate) time: String,
    /// The sender.
    pub(crate) from: String,
    /// The alias it was sent to.
    pub(crate) to: String,
    /// Its receipt state: new, shown, read.
    pub(crate) state: &'static str,
    /// The first line of its text.
    pub(crate) text: String,
}

/// The popup window's whole state.
#[derive(Debug)]
pub(crate) struct App {
    /// Messages, oldest first (newest at the bottom, as `netsend inbox`).
    messages: Vec<StoredMessage>,
    /// The selected message's id.
    selected: Option<i64>,
    /// What is shown.
    pub(crate) mode: Mode,
    /// The status line.
    pub(crate) status: Status,
    /// Whether the help line is shown.
    pub(crate) help: bool,
    /// What arrived last while the window was open, sanitised.
    arrival: Option<String>,
    /// Names from the service (aliases, the LAN list).
    names: BTreeSet<String>,
    /// The message to open once the first listing is in (`--id`).
    open_first: Option<i64>,
    /// How to write a time (local time in the program, fixed in tests).
    clock: fn(i64) -> String,
}

impl App {
    /// A window with no messages yet; `open` is the message to open once
    /// the listing is in (`netsend popup --id ID`); `clock` writes times.
    pub(crate) fn new(open: Option<i64>, clock: fn(i64) -> String) -> Self {
        Self {
            messages: Vec::new(),
            selected: None,
            mode: Mode::List,
            status: Status::Idle,
            help: false,
            arrival: None,
            names: BTreeSet::new(),
            open_first: open,
            clock,
        }
    }

    /// Handles one event; returns what the I/O loop must do.
    pub(crate) fn handle(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.key(key),
            Event::Messages { initial, messages } => self.arrived(initial, messages),
            Event::Names(names) => {
                self.names = names
                    .iter()
                    .map(|n| sanitize_name(n).to_uppercase())
                    .filter(|n| !n.is_empty())
                    .take(MAX_NAMES)
                    .collect();
                Vec::new()
            }
            Event::Opened(Ok(message)) => {
                if let Some(m) = self.messages.iter_mut().find(|m| m.id == message.id) {
                    *m = message;
                }
                Vec::new()
            }
            Event::Deleted(Ok(id)) => {
                let next = self.neighbour(id);
                self.messages.retain(|m| m.id != id);
                if self.selected == Some(id) {
                    self.selected = next;
                }
                if matches!(self.mode, Mode::View { id: shown, .. } if shown == id) {
                    self.mode = Mode::List;
                }
                self.status = Status::Note(format!("Message {id} was deleted."));
                Vec::new()
            }
            Event::Sent(Ok(report)) => {
                self.status = Status::Note(report);
                Vec::new()
            }
            Event::Opened(Err(p)) | Event::Deleted(Err(p)) | Event::Sent(Err(p)) => {
                self.status = Status::Failed(p);
                Vec::new()
            }
            Event::Connection(Some(p)) => {
                self.status = Status::Failed(p);
                Vec::new()
            }
            Event::Connection(None) => {
                self.status = Status::Note("The messenger service answers again.".into());
                Vec::new()
            }
        }
    }

    /// Messages came in: kept in id order, at most [`MAX_LISTED`].
    fn arrived(&mut self, initial: bool, messages: Vec<StoredMessage>) -> Vec<Effect> {
        let mut effects = Vec::new();
        let newest = self.messages.last().map_or(i64::MIN, |m| m.id);
        let follow = self.selected.is_none() || self.selected == Some(newest);
        let mut fresh = 0;
        for m in messages {
            if m.id <= newest {
                continue;
            }
            if !initial {
                fresh += 1;
                effects.push(Effect::Shown(m.id));
                self.arrival = Some(format!(
                    "new message from {} to {}",
                    sanitize_name(&m.from),
                    sanitize_name(&m.to)
                ));
            }
            self.messages.push(m);
        }
        if self.messages.len() > MAX_LISTED {
            let extra = self.messages.len() - MAX_LISTED;
            self.messages.drain(..extra);
        }
        if self.selected.is_some_and(|id| self.index_of(id).is_none()) {
            self.selected = None;
        }
        if follow {
            self.selected = self.messages.last().map(|m| m.id);
        }
        if fresh > 1 {
            self.arrival = Some(format!("{fresh} new messages"));
        }
        if initial {
            if let Some(id) = self.open_first.take() {
                if self.index_of(id).is_some() {
                    self.selected = Some(id);
                    self.mode = Mode::View { id, scroll: 0 };
                    effects.push(Effect::Open(id));
                } else {
                    self.status = Status::Failed(Problem {
                        status: NetApiStatus::ERROR_INVALID_PARAMETER,
                        detail: format!("there is no message {id} in your inbox"),
                    });
                }
            }
        }
        effects
    }

    fn index_of(&self, id: i64) -> Option<usize> {
        self.messages.iter().position(|m| m.id == id)
    }

    /// The message after `id` in the list, else the one before it.
    fn neighbour(&self, id: i64) -> Option<i64> {
        let i = self.index_of(id)?;
        self.messages
            .get(i + 1)
            .or_else(|| i.checked_sub(1).and_then(|j| self.messages.get(j)))
            .map(|m| m.id)
    }

    /// The selected message.
    fn current(&self) -> Option<&StoredMessage> {
        self.selected
            .and_then(|id| self.index_of(id))
            .map(|i| &self.messages[i])
    }

    fn key(&mut self, key: Key) -> Vec<Effect> {
        if key == Key::Interrupt {
            return vec![Effect::Quit];
        }
        match std::mem::replace(&mut self.mode, Mode::List) {
            Mode::List => self.list_key(key),
            Mode::View { id, scroll } => self.view_key(id, scroll, key),
            Mode::Compose { draft, back } => self.compose_key(draft, back, key),
            Mode::ConfirmDelete { id, back } => {
                if matches!(key, Key::Char('y' | 'Y')) {
                    self.mode = Mode::List;
                    self.status = Status::Note(format!("Deleting message {id}..."));
                    vec![Effect::Delete(id)]
                } else {
                    self.mode = *back;
                    self.status = Status::Note("Not deleted.".into());
                    Vec::new()
                }
            }
        }
    }

    /// Keys that work on the selected message in the list and in its view.
    fn message_key(&mut self, key: Key, here: Mode) -> Option<Vec<Effect>> {
        match key {
            Key::Char('r') => {
                let Some(m) = self.current() else {
                    self.status = Status::Note("There is no message to reply to.".into());
                    self.mode = here;
                    return Some(Vec::new());
                };
                let draft = Draft {
                    reply_to: Some(m.id),
                    to: sanitize_name(&m.from),
                    text: String::new(),
                    field: Field::Text,
                    cycle: None,
                };
                self.mode = Mode::Compose {
                    draft,
                    back: Box::new(here),
                };
                self.status =
                    Status::Note("Reply: Enter sends, Ctrl-J breaks the line, Esc cancels.".into());
                Some(Vec::new())
            }
            Key::Char('n') => {
                self.mode = Mode::Compose {
                    draft: Draft {
                        reply_to: None,
                        to: String::new(),
                        text: String::new(),
                        field: Field::To,
                        cycle: None,
                    },
                    back: Box::new(here),
                };
                self.status = Status::Note(
                    "New message: Tab completes the name, Enter goes on, Esc cancels.".into(),
                );
                Some(Vec::new())
            }
            Key::Char('d') => {
                match self.selected {
                    Some(id) => {
                        self.mode = Mode::ConfirmDelete {
                            id,
                            back: Box::new(here),
                        };
                        self.status = Status::Note(format!("Delete message {id}? (y/n)"));
                    }
                    None => self.mode = here,
                }
                Some(Vec::new())
            }
            Key::Char('?') => {
                self.help = !self.help;
                self.mode = here;
                Some(Vec::new())
            }
            _ => {
                self.mode = here;
                None
            }
        }
    }

    fn list_key(&mut self, key: Key) -> Vec<Effect> {
        if let Some(effects) = self.message_key(key, Mode::List) {
            return effects;
        }
        let count = self.messages.len();
        let at = self.selected.and_then(|id| self.index_of(id));
        let select = |i: usize| count.checked_sub(1).map(|last| i.min(last));
        let target = match key {
            Key::Char('q') | Key::Esc => return vec![Effect::Quit],
            Key::Up | Key::Char('k') => at.map(|i| i.saturating_sub(1)).or(select(usize::MAX)),
            Key::Down | Key::Char('j') => at.map(|i| i + 1).and_then(select),
            Key::PageUp => at.map(|i| i.saturating_sub(10)),
            Key::PageDown => at.map(|i| i + 10).and_then(select),
            Key::Home => select(0),
            Key::End => select(usize::MAX),
            Key::Enter => {
                return match self.selected {
                    Some(id) => {
                        self.mode = Mode::View { id, scroll: 0 };
                        vec![Effect::Open(id)]
                    }
                    None => Vec::new(),
                }
            }
            _ => None,
        };
        if let Some(i) = target {
            self.selected = Some(self.messages[i].id);
        }
        Vec::new()
    }

    fn view_key(&mut self, id: i64, scroll: u16, key: Key) -> Vec<Effect> {
        // Keys act on the message shown, even if the list moved on to one
        // that arrived meanwhile.
        if self.index_of(id).is_some() {
            self.selected = Some(id);
        }
        let here = Mode::View { id, scroll };
        if let Some(effects) = self.message_key(key, here) {
            return effects;
        }
        self.mode = match key {
            Key::Char('q') | Key::Esc => Mode::List,
            Key::Up | Key::Char('k') => Mode::View {
                id,
                scroll: scroll.saturating_sub(1),
            },
            Key::Down | Key::Char('j') => Mode::View {
                id,
                scroll: scroll.saturating_add(1),
            },
            Key::PageUp => Mode::View {
                id,
                scroll: scroll.saturating_sub(10),
            },
            Key::PageDown => Mode::View {
                id,
                scroll: scroll.saturating_add(10),
            },
            Key::Home => Mode::View { id, scroll: 0 },
            _ => Mode::View { id, scroll },
        };
        Vec::new()
    }

    fn compose_key(&mut self, mut draft: Draft, back: Box<Mode>, key: Key) -> Vec<Effect> {
        if key != Key::Tab {
            draft.cycle = None;
        }
        let field = match draft.field {
            Field::To => &mut draft.to,
            Field::Text => &mut draft.text,
        };
        let limit = match draft.field {
            Field::To => MAX_TO_LEN,
            Field::Text => MAX_TEXT_LEN,
        };
        match key {
            Key::Esc => {
                self.mode = *back;
                self.status = Status::Note("Not sent.".into());
                return Vec::new();
            }
            // A name is typed as one word.
            Key::Char(c)
                if !(c.is_control() || draft.field == Field::To && c == ' ')
                    && field.len() + c.len_utf8() <= limit =>
            {
                field.push(c);
            }
            Key::NewLine if draft.field == Field::Text && field.len() < limit => field.push('\n'),
            Key::Backspace => {
                field.pop();
            }
            Key::Tab if draft.field == Field::To => self.complete(&mut draft),
            Key::Enter if draft.field == Field::To => {
                if draft.to.is_empty() {
                    self.status = Status::Note("Type a name first (Tab completes).".into());
                } else {
                    draft.field = Field::Text;
                    self.status =
                        Status::Note("Enter sends, Ctrl-J breaks the line, Esc cancels.".into());
                }
            }
            Key::Enter => {
                if draft.text.trim().is_empty() {
                    self.status = Status::Note("Type the message first.".into());
                } else {
                    self.mode = *back;
                    self.status = Status::Note(format!("Sending to {}...", draft.to));
                    let text = draft.text;
                    return vec![match draft.reply_to {
                        Some(id) => Effect::Reply { id, text },
                        None => Effect::Send { to: draft.to, text },
                    }];
                }
            }
            _ => {}
        }
        self.mode = Mode::Compose { draft, back };
        Vec::new()
    }

    /// Names to complete from: the service's, and everyone who wrote to us.
    fn candidates(&self) -> BTreeSet<String> {
        let mut all = self.names.clone();
        for m in self.messages.iter().rev().take(MAX_NAMES) {
            let name = sanitize_name(&m.from).to_uppercase();
            if !name.is_empty() && !name.contains(' ') {
                all.insert(name);
            }
        }
        all
    }

    /// Tab in the "To" field: a name that starts with what was typed (in
    /// any case); with several, their common beginning, then each in turn.
    fn complete(&mut self, draft: &mut Draft) {
        if let Some((list, at)) = &mut draft.cycle {
            *at = (*at + 1) % list.len();
            draft.to.clone_from(&list[*at]);
            return;
        }
        let typed = draft.to.to_uppercase();
        let matches: Vec<String> = self
            .candidates()
            .into_iter()
            .filter(|n| n.starts_with(&typed))
            .collect();
        match matches.as_slice() {
            [] => self.status = Status::Note(format!("No name starts with {typed}.")),
            [only] => {
                draft.to.clone_from(only);
                self.status = Status::Idle;
            }
            several => {
                let common = common_prefix(several);
                if common.len() > typed.len() {
                    draft.to = common;
                } else {
                    draft.to.clone_from(&several[0]);
                    draft.cycle = Some((several.to_vec(), 0));
                }
                self.status = Status::Note(format!("Names: {}", several.join(" ")));
            }
        }
    }

    /// The list's rows, oldest first, and the index of the selected one.
    pub(crate) fn rows(&self) -> (Vec<Row>, Option<usize>) {
        let rows = self
            .messages
            .iter()
            .map(|m| Row {
                id: m.id,
                unread: !m.read,
                time: (self.clock)(m.received_at),
                from: sanitize_name(&m.from),
                to: sanitize_name(&m.to),
                state: m.state(),
                text: sanitize_first_line(&m.text),
            })
            .collect();
        (rows, self.selected.and_then(|id| self.index_of(id)))
    }

    /// The lines of the open message's view: a header, its receipt, a blank
    /// line, then its whole text.
    pub(crate) fn view_lines(&self, id: i64) -> Vec<String> {
        let Some(m) = self.index_of(id).map(|i| &self.messages[i]) else {
            return vec![format!("Message {id} is no longer in the inbox.")];
        };
        let at = |t: Option<i64>| t.map_or_else(|| "not yet".to_owned(), self.clock);
        let mut lines = vec![
            format!("From:     {}", sanitize_name(&m.from)),
            format!(
                "To:       {}{}",
                sanitize_name(&m.to),
                if m.broadcast { " (broadcast)" } else { "" }
            ),
            format!("Received: {}", (self.clock)(m.received_at)),
            format!(
                "Via:      {} ({}), message {}",
                sanitize_name(&m.source),
                m.transport.as_str(),
                m.id
            ),
            format!(
                "Receipt:  {}; shown {}, read {}",
                m.state(),
                at(m.shown_at),
                at(m.read_at)
            ),
            String::new(),
        ];
        lines.extend(sanitize(&m.text).lines().map(String::from));
        lines
    }

    /// The status line's text, sanitised.
    pub(crate) fn status_line(&self) -> String {
        match &self.status {
            Status::Idle => String::new(),
            Status::Note(note) => sanitize_name(note),
            Status::Failed(p) => sanitize_name(&format!("{} {}", p.status, p.detail)),
        }
    }

    /// The title line: how many messages are listed, how many of them are
    /// unread, and the last arrival (kept off the status line, so that it
    /// never hides the outcome of what the user did).
    pub(crate) fn title(&self) -> String {
        let unread = self.messages.iter().filter(|m| !m.read).count();
        let mut title = format!(
            "netsend popup: {} message(s), {unread} unread",
            self.messages.len()
        );
        if let Some(arrival) = &self.arrival {
            title.push_str("; ");
            title.push_str(arrival);
        }
        title
    }
}

/// The longest beginning every name shares.
fn common_prefix(names: &[String]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut len = first.len();
    for n in &names[1..] {
        len = first
            .char_indices()
            .zip(n.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(len);
    }
    first[..len].to_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use netsend_control::types::Transport;

    fn clock(ms: i64) -> String {
        format!("t{}", ms / 1000)
    }

    /// A stored message `id` from `from` to BOB (other tests use it too).
    pub(crate) fn message(id: i64, from: &str, text: &str) -> StoredMessage {
        StoredMessage {
            id,
            received_at: id * 1000,
            from: from.into(),
            to: "BOB".into(),
            recipient_user: Some("bob".into()),
            source: "192.0.2.7".into(),
            text: text.into(),
            transport: Transport::Session,
            broadcast: false,
            read: false,
            shown_at: None,
            read_at: None,
            verified_host: None,
            claimed_by: None,
        }
    }

    fn app_with(messages: Vec<StoredMessage>) -> App {
        let mut app = App::new(None, clock);
        app.handle(Event::Messages {
            initial: true,
            messages,
        });
        app
    }

    fn keys(app: &mut App, keys: &[Key]) -> Vec<Effect> {
        keys.iter()
            .flat_map(|k| app.handle(Event::Key(*k)))
            .collect()
    }

    fn typed(app: &mut App, text: &str) -> Vec<Effect> {
        let keys: Vec<Key> = text.chars().map(Key::Char).collect();
        self::keys(app, &keys)
    }

    #[test]
    fn the_newest_is_selected_and_enter_opens_it() {
        let mut app = app_with(vec![message(1, "ALICE", "one"), message(2, "CAROL", "two")]);
        let (rows, selected) = app.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(selected, Some(1));
        assert!(rows[1].unread);
        assert_eq!(keys(&mut app, &[Key::Up, Key::Enter]), [Effect::Open(1)]);
        assert_eq!(app.mode, Mode::View { id: 1, scroll: 0 });
        // The answer marks it read in the list.
        let mut read = message(1, "ALICE", "one");
        read.read = true;
        read.read_at = Some(5000);
        app.handle(Event::Opened(Ok(read)));
        let (rows, _) = app.rows();
        assert!(!rows[0].unread);
        assert_eq!(rows[0].state, "read");
        assert!(app
            .view_lines(1)
            .iter()
            .any(|l| l == "Receipt:  read; shown not yet, read t5"));
        // Esc goes back to the list, q there quits.
        assert!(keys(&mut app, &[Key::Esc]).is_empty());
        assert_eq!(app.mode, Mode::List);
        assert_eq!(keys(&mut app, &[Key::Char('q')]), [Effect::Quit]);
    }

    #[test]
    fn arrivals_are_listed_marked_shown_and_followed_at_the_bottom() {
        let mut app = app_with(vec![message(1, "ALICE", "one")]);
        let effects = app.handle(Event::Messages {
            initial: false,
            messages: vec![message(2, "CAROL", "two")],
        });
        assert_eq!(effects, [Effect::Shown(2)]);
        assert_eq!(app.rows().1, Some(1));
        assert_eq!(
            app.title(),
            "netsend popup: 2 message(s), 2 unread; new message from CAROL to BOB"
        );
        // A selection elsewhere stays where it is.
        keys(&mut app, &[Key::Home]);
        app.handle(Event::Messages {
            initial: false,
            messages: vec![message(3, "DAVE", "three"), message(2, "CAROL", "dup")],
        });
        assert_eq!(app.rows().0.len(), 3);
        assert_eq!(app.rows().1, Some(0));
    }

    #[test]
    fn keys_in_a_view_act_on_the_message_shown_not_on_an_arrival() {
        let mut app = app_with(vec![message(1, "ALICE", "one")]);
        assert_eq!(keys(&mut app, &[Key::Enter]), [Effect::Open(1)]);
        app.handle(Event::Messages {
            initial: false,
            messages: vec![message(2, "CAROL", "two")],
        });
        assert_eq!(app.mode, Mode::View { id: 1, scroll: 0 });
        keys(&mut app, &[Key::Char('r')]);
        typed(&mut app, "ok");
        assert_eq!(
            keys(&mut app, &[Key::Enter]),
            [Effect::Reply {
                id: 1,
                text: "ok".into()
            }]
        );
    }

    #[test]
    fn the_list_is_bounded() {
        let all: Vec<_> = (1..=(MAX_LISTED as i64 + 5))
            .map(|i| message(i, "A", "x"))
            .collect();
        let app = app_with(all);
        let (rows, selected) = app.rows();
        assert_eq!(rows.len(), MAX_LISTED);
        assert_eq!(rows[0].id, 6);
        assert_eq!(selected, Some(MAX_LISTED - 1));
    }

    #[test]
    fn open_on_a_given_message() {
        let mut app = App::new(Some(1), clock);
        let effects = app.handle(Event::Messages {
            initial: true,
            messages: vec![message(1, "ALICE", "one"), message(2, "B", "two")],
        });
        assert_eq!(effects, [Effect::Open(1)]);
        assert_eq!(app.mode, Mode::View { id: 1, scroll: 0 });
        let mut missing = App::new(Some(9), clock);
        missing.handle(Event::Messages {
            initial: true,
            messages: vec![message(1, "ALICE", "one")],
        });
        assert_eq!(missing.mode, Mode::List);
        assert!(
            missing
                .status_line()
                .starts_with("ERROR_INVALID_PARAMETER (87)"),
            "{}",
            missing.status_line()
        );
    }

    #[test]
    fn reply_answers_the_selected_message() {
        let mut app = app_with(vec![message(4, "ALICE", "lunch?")]);
        keys(&mut app, &[Key::Char('r')]);
        let Mode::Compose { draft, .. } = &app.mode else {
            panic!("{:?}", app.mode)
        };
        assert_eq!(draft.to, "ALICE");
        assert_eq!(draft.field, Field::Text);
        // Enter with no text sends nothing.
        assert!(keys(&mut app, &[Key::Enter]).is_empty());
        typed(&mut app, "yes");
        keys(&mut app, &[Key::NewLine]);
        typed(&mut app, "at one");
        assert_eq!(
            keys(&mut app, &[Key::Enter]),
            [Effect::Reply {
                id: 4,
                text: "yes\nat one".into()
            }]
        );
        assert_eq!(app.mode, Mode::List);
        app.handle(Event::Sent(Err(Problem {
            status: NetApiStatus::NERR_NAME_NOT_FOUND,
            detail: "ALICE<03> could not be found on the network".into(),
        })));
        assert_eq!(
            app.status_line(),
            "NERR_NameNotFound (2273): The message alias could not be found on the network. ALICE<03> could not be found on the network"
        );
    }

    #[test]
    fn escape_cancels_a_draft() {
        let mut app = app_with(vec![message(4, "ALICE", "lunch?")]);
        keys(&mut app, &[Key::Enter]);
        typed(&mut app, "r");
        typed(&mut app, "no");
        assert!(keys(&mut app, &[Key::Esc]).is_empty());
        assert_eq!(app.mode, Mode::View { id: 4, scroll: 0 });
    }

    #[test]
    fn tab_completes_names_from_aliases_and_correspondents() {
        let mut app = app_with(vec![message(1, "carol", "hi")]);
        app.handle(Event::Names(vec![
            "HOSTA".into(),
            "HOSTB".into(),
            "ALICE".into(),
        ]));
        typed(&mut app, "n");
        typed(&mut app, "a");
        keys(&mut app, &[Key::Tab]);
        let draft = |app: &App| match &app.mode {
            Mode::Compose { draft, .. } => draft.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(draft(&app).to, "ALICE");
        keys(&mut app, &[Key::Backspace; 5]);
        typed(&mut app, "h");
        keys(&mut app, &[Key::Tab]);
        assert_eq!(draft(&app).to, "HOST");
        assert_eq!(app.status_line(), "Names: HOSTA HOSTB");
        keys(&mut app, &[Key::Tab]);
        assert_eq!(draft(&app).to, "HOSTA");
        keys(&mut app, &[Key::Tab]);
        assert_eq!(draft(&app).to, "HOSTB");
        keys(&mut app, &[Key::Backspace; 5]);
        typed(&mut app, "C");
        keys(&mut app, &[Key::Tab]);
        assert_eq!(draft(&app).to, "CAROL");
        keys(&mut app, &[Key::Enter]);
        assert_eq!(draft(&app).field, Field::Text);
        typed(&mut app, "hello there");
        assert_eq!(
            keys(&mut app, &[Key::Enter]),
            [Effect::Send {
                to: "CAROL".into(),
                text: "hello there".into()
            }]
        );
    }

    #[test]
    fn delete_asks_first() {
        let mut app = app_with(vec![message(1, "A", "x"), message(2, "B", "y")]);
        keys(&mut app, &[Key::Char('d')]);
        assert_eq!(app.status_line(), "Delete message 2? (y/n)");
        assert!(keys(&mut app, &[Key::Char('n')]).is_empty());
        assert_eq!(app.mode, Mode::List);
        assert_eq!(
            keys(&mut app, &[Key::Char('d'), Key::Char('y')]),
            [Effect::Delete(2)]
        );
        app.handle(Event::Deleted(Ok(2)));
        let (rows, selected) = app.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(selected, Some(0));
    }

    #[test]
    fn help_toggles_and_ctrl_c_quits_anywhere() {
        let mut app = app_with(vec![message(1, "A", "x")]);
        keys(&mut app, &[Key::Char('?')]);
        assert!(app.help);
        keys(&mut app, &[Key::Char('n')]);
        assert_eq!(keys(&mut app, &[Key::Interrupt]), [Effect::Quit]);
    }

    #[test]
    fn peer_text_reaches_no_line_with_a_control_character() {
        let evil = "hi \x1b]0;pwned\x07\x1b[31mred\u{9b}2J\u{202e}\r\nline2\x1bP+q\x1b\\";
        let mut app = app_with(vec![message(1, "MAL\x1b[2JLORY\n", evil)]);
        app.handle(Event::Names(vec!["EV\x1b]0;x\x07IL".into()]));
        let (rows, _) = app.rows();
        let row = &rows[0];
        for field in [&row.from, &row.to, &row.text, &row.time] {
            assert!(!field.chars().any(char::is_control), "{field:?}");
        }
        assert_eq!(row.text, "hi red");
        assert_eq!(row.from, "MALLORY");
        for line in app.view_lines(1) {
            assert!(
                !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{line:?}"
            );
        }
        assert!(app.view_lines(1).contains(&"line2".to_owned()));
        app.handle(Event::Sent(Err(Problem {
            status: NetApiStatus::NERR_NETWORK_ERROR,
            detail: "peer said \x1b]0;t\x07\nforged".into(),
        })));
        assert!(!app.status_line().chars().any(char::is_control));
        typed(&mut app, "n");
        typed(&mut app, "E");
        keys(&mut app, &[Key::Tab]);
        assert_eq!(app.status_line(), "");
        let Mode::Compose { draft, .. } = &app.mode else {
            panic!()
        };
        assert_eq!(draft.to, "EVIL");
    }

    #[test]
    fn common_prefix_of_names() {
        assert_eq!(common_prefix(&["HOSTA".into(), "HOSTB".into()]), "HOST");
        assert_eq!(common_prefix(&["ÄB".into(), "ÄC".into()]), "Ä");
        assert_eq!(common_prefix(&["A".into(), "B".into()]), "");
    }
}
