//! `netsend popup`: a full-screen window on the caller's inbox in the
//! terminal (ratatui on crossterm).
//!
//! The state and every key are in [`app::App`], a pure model with its own
//! tests; [`draw`] paints it; this module is the thin I/O loop: a thread
//! reads the terminal's keys, a task follows the inbox the way
//! `netsend inbox --follow` does (each request waits in the service until a
//! message is stored), each request the model asks for runs as its own
//! task, and every answer comes back as an [`app::Event`], so input never
//! waits for the network. The terminal is restored on every way out: quit,
//! an error, a panic (the hook), SIGTERM, SIGHUP and SIGINT.

mod app;
mod draw;

#[cfg(test)]
pub(crate) use app::tests;

use std::io::Write as _;
use std::time::Duration;

use chrono::TimeZone as _;
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use netsend_control::config::ClientConfig;
use netsend_control::types::SentKind;
use netsend_control::{Request, Response};
use netsend_wire::status::NetApiStatus;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use self::app::{App, Effect, Event, Key, Problem, MAX_LISTED};
use crate::cmd::{call, fetch_messages, fetch_newest, unexpected, Listing};
use crate::Failure;

/// How long one follow request waits in the service for a new message.
const FOLLOW_WAIT_MS: u64 = 30_000;
/// First pause after the service stopped answering.
const MIN_RETRY: Duration = Duration::from_millis(250);
/// Longest pause between attempts to reach it again.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// What wakes the loop.
enum Input {
    /// An event for the model.
    App(Box<Event>),
    /// The terminal changed size: draw again.
    Redraw,
}

/// Runs the window until the user quits or a signal ends it; `open` is the
/// message to open first.
pub(crate) async fn run(config: &ClientConfig, open: Option<i64>) -> Result<(), Failure> {
    use crossterm::tty::IsTty as _;
    if !std::io::stdout().is_tty() || !std::io::stdin().is_tty() {
        return Err(Failure::new(
            NetApiStatus::ERROR_NOT_SUPPORTED,
            "netsend popup needs a terminal",
        )
        .with_hint("run it in a terminal; `netsend inbox` lists messages anywhere"));
    }
    // The service is asked before the screen changes, so a service that is
    // not running is reported as every command reports it.
    let (first, _) = fetch_newest(config, &everything(), MAX_LISTED).await?;
    let names = names(config).await;
    let watch = |kind| {
        signal(kind).map_err(|e| {
            Failure::new(
                NetApiStatus::NERR_INTERNAL_ERROR,
                format!("cannot watch signals: {e}"),
            )
        })
    };
    let mut term = watch(SignalKind::terminate())?;
    let mut hup = watch(SignalKind::hangup())?;
    let mut int = watch(SignalKind::interrupt())?;

    let mut terminal = Screen::open()?;
    let mut app = App::new(open, local_time);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let newest = first.last().map(|m| m.id);
    let mut effects = app.handle(Event::Names(names));
    effects.extend(app.handle(Event::Messages {
        initial: true,
        messages: first,
    }));
    read_keys(tx.clone());
    tokio::spawn(follow(config.clone(), newest, tx.clone()));
    loop {
        for effect in effects.drain(..) {
            if effect == Effect::Quit {
                return terminal.close();
            }
            tokio::spawn(carry_out(config.clone(), effect, tx.clone()));
        }
        terminal
            .0
            .draw(|f| draw::draw(f, &app))
            .map_err(|e| Failure::new(NetApiStatus::NERR_INTERNAL_ERROR, e.to_string()))?;
        let input = tokio::select! {
            input = rx.recv() => input,
            _ = term.recv() => None,
            _ = hup.recv() => None,
            _ = int.recv() => None,
        };
        match input {
            Some(Input::App(event)) => effects = app.handle(*event),
            Some(Input::Redraw) => {}
            None => return terminal.close(),
        }
    }
}

/// The terminal in raw mode on the alternate screen, given back in `Drop`
/// and by the panic hook.
struct Screen(ratatui::DefaultTerminal);

impl Screen {
    fn open() -> Result<Self, Failure> {
        let terminal = ratatui::try_init()
            .map_err(|e| Failure::new(NetApiStatus::ERROR_NOT_SUPPORTED, e.to_string()))?;
        // ratatui's hook leaves raw mode and the alternate screen; the
        // cursor is shown again too.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        Ok(Self(terminal))
    }

    /// Gives the terminal back as it was.
    fn close(self) -> Result<(), Failure> {
        drop(self);
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen and shows the cursor.
fn restore() {
    let _ = ratatui::try_restore();
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(out, crossterm::cursor::Show);
    let _ = out.flush();
}

/// A time as the window shows it: local date and time to the minute.
fn local_time(unix_ms: i64) -> String {
    chrono::Local
        .timestamp_millis_opt(unix_ms)
        .earliest()
        .map_or_else(
            || "?".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        )
}

/// Reads the terminal's keys on a thread of its own, until the window
/// closes.
fn read_keys(tx: mpsc::UnboundedSender<Input>) {
    std::thread::spawn(move || loop {
        let input = match crossterm::event::read() {
            Ok(TermEvent::Key(k)) => match key(k) {
                Some(k) => Input::App(Box::new(Event::Key(k))),
                None => continue,
            },
            Ok(TermEvent::Resize(..)) => Input::Redraw,
            Ok(_) => continue,
            Err(_) => return,
        };
        if tx.send(input).is_err() {
            return;
        }
    });
}

/// The model's key for a terminal key.
fn key(k: KeyEvent) -> Option<Key> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    Some(match k.code {
        KeyCode::Char('c') if ctrl => Key::Interrupt,
        KeyCode::Char('j') if ctrl => Key::NewLine,
        KeyCode::Char(c) if !ctrl => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Tab => Key::Tab,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        _ => return None,
    })
}

/// The whole inbox (of the caller), as the window lists it.
const fn everything() -> Listing {
    Listing {
        json: false,
        unread: false,
        follow: true,
        search: None,
        since_ms: None,
        from: None,
    }
}

/// A failure as the model shows it.
fn problem(f: &Failure) -> Problem {
    Problem {
        status: f.status,
        detail: f.detail().to_owned(),
    }
}

/// Records of the sent archive read for names to complete from.
const SENT_NAMES: usize = 100;

/// The names to complete from: the aliases here, and whom the caller sent
/// directed messages to lately (the sent archive). Either may be missing.
async fn names(config: &ClientConfig) -> Vec<String> {
    let mut names = match call(config, Request::Names).await {
        Ok(Response::Names { names, .. }) => names.into_iter().map(|a| a.alias.name).collect(),
        _ => Vec::new(),
    };
    let sent = Request::SentList {
        after_id: None,
        before_id: None,
        limit: SENT_NAMES,
        newest: true,
        search: None,
        to: None,
        since_ms: None,
        count: false,
    };
    if let Ok(Response::SentList { records, .. }) = call(config, sent).await {
        names.extend(
            records
                .into_iter()
                .filter(|r| matches!(r.kind, SentKind::Directed | SentKind::Queued))
                .map(|r| r.to),
        );
    }
    names
}

/// Follows the inbox after `after_id`, handing every new message to the
/// model; outlives a restart of the service, saying so on the status line.
async fn follow(config: ClientConfig, mut after_id: Option<i64>, tx: mpsc::UnboundedSender<Input>) {
    let mut retry = MIN_RETRY;
    let mut lost = false;
    loop {
        let fetched = fetch_messages(&config, &everything(), after_id, FOLLOW_WAIT_MS).await;
        let event = match fetched {
            Ok(messages) => {
                if std::mem::take(&mut lost) {
                    retry = MIN_RETRY;
                    if tx
                        .send(Input::App(Box::new(Event::Connection(None))))
                        .is_err()
                    {
                        return;
                    }
                }
                if messages.is_empty() {
                    continue;
                }
                after_id = messages.last().map(|m| m.id);
                Event::Messages {
                    initial: false,
                    messages,
                }
            }
            Err(f) => {
                let first = !lost;
                lost = true;
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                if !first {
                    continue;
                }
                Event::Connection(Some(problem(&f)))
            }
        };
        if tx.send(Input::App(Box::new(event))).is_err() {
            return;
        }
    }
}

/// Carries out one request of the model and hands it the answer.
async fn carry_out(config: ClientConfig, effect: Effect, tx: mpsc::UnboundedSender<Input>) {
    let event = match effect {
        Effect::Open(id) => Event::Opened(match call(&config, Request::InboxRead { id }).await {
            Ok(Response::Message(m)) => Ok(m),
            Ok(r) => Err(problem(&unexpected(r))),
            Err(f) => Err(problem(&f)),
        }),
        Effect::Shown(id) => match call(&config, Request::InboxShown { id }).await {
            Ok(_) => return,
            Err(f) => Event::Connection(Some(problem(&f))),
        },
        Effect::Delete(id) => {
            let request = Request::InboxDelete {
                ids: vec![id],
                read: false,
            };
            Event::Deleted(match call(&config, request).await {
                Ok(Response::Deleted { count }) if count > 0 => Ok(id),
                Ok(Response::Deleted { .. }) => Err(Problem {
                    status: NetApiStatus::ERROR_INVALID_PARAMETER,
                    detail: format!("message {id} is not in your inbox"),
                }),
                Ok(r) => Err(problem(&unexpected(r))),
                Err(f) => Err(problem(&f)),
            })
        }
        Effect::Reply { id, text } => {
            Event::Sent(match call(&config, Request::Reply { id, text }).await {
                Ok(Response::Replied(r)) => Ok(format!(
                    "The reply was sent to {} ({}){}.",
                    r.sent.to,
                    r.sent.address,
                    r.fallback.map(|why| format!("; {why}")).unwrap_or_default()
                )),
                Ok(r) => Err(problem(&unexpected(r))),
                Err(f) => Err(problem(&f)),
            })
        }
        Effect::Send { to, text } => {
            let request = Request::Send {
                to,
                from: None,
                text,
            };
            Event::Sent(match call(&config, request).await {
                Ok(Response::Sent(r)) => {
                    Ok(format!("The message was sent to {} ({}).", r.to, r.address))
                }
                Ok(r) => Err(problem(&unexpected(r))),
                Err(f) => Err(problem(&f)),
            })
        }
        Effect::Quit => return,
    };
    let _ = tx.send(Input::App(Box::new(event)));
}
