//! Writing received messages to the recipients' terminals, as write(1) and
//! wall(1) do: every terminal utmp lists for the recipient (for a message to
//! the computer name or a broadcast, every logged-in user's), where the
//! terminal's owner allows it (`mesg y`: the device is group-writable).
//!
//! The text is sanitised first ([`netsend_proto::display`]): no escape
//! sequence from the network reaches a terminal.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Local, TimeZone, Timelike};
use netsend_proto::display::{terminal_device, Shown, TimeOfDay};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags};
use nix::unistd::User;

use netsend_proto::display::LogSafe;
use netsend_proto::receipt::ReceiptState;

use super::receipts::Receipts;
use super::DeliveryChannel;
use crate::metrics::DeliveryCounter;
use crate::shutdown::Shutdown;
use crate::store::{InboxHandle, StoredMessage};
use crate::system::users::{login_terminals, LoginTerminal};

/// Longest time spent on one terminal that does not take the text at once
/// (a stopped or flow-controlled terminal); the rest is then skipped.
const TERMINAL_TIMEOUT: Duration = Duration::from_millis(500);
/// Group write permission: the terminal's owner said `mesg y`.
const MESG_Y: u32 = 0o020;

/// A stored message as it is shown, its time of receipt in local time.
pub fn shown(message: &StoredMessage) -> Shown<'_> {
    Shown {
        from: &message.from,
        to: &message.to,
        text: &message.text,
        broadcast: message.broadcast,
        time: time_of_day(message.received_at),
        verified_host: message.verified_host.as_deref(),
        claimed_by: message.claimed_by.as_deref(),
    }
}

/// The local time of day of a Unix time in milliseconds.
fn time_of_day(unix_ms: i64) -> TimeOfDay {
    let at = Local
        .timestamp_millis_opt(unix_ms)
        .earliest()
        .unwrap_or_else(Local::now);
    TimeOfDay {
        hour: u8::try_from(at.hour()).unwrap_or(0),
        minute: u8::try_from(at.minute()).unwrap_or(0),
    }
}

/// The terminals channel: writes each message to its recipients'
/// terminals and records who saw it.
pub(crate) struct Terminals {
    /// utmp, for who is logged in where.
    utmp_path: PathBuf,
    /// The computer name, in the banner.
    computer_name: String,
    /// Where "shown" is recorded.
    inbox: InboxHandle,
    /// The receipt a message's sender gets when it is first shown.
    receipts: Receipts,
    /// Each message's writes are a task the stop waits for.
    shutdown: Shutdown,
    /// Where each message's outcome is counted.
    counter: DeliveryCounter,
}

impl Terminals {
    /// Terminals as utmp at `utmp_path` lists them.
    pub(crate) fn new(
        utmp_path: PathBuf,
        computer_name: String,
        inbox: InboxHandle,
        receipts: Receipts,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            utmp_path,
            computer_name,
            inbox,
            receipts,
            shutdown,
            counter: DeliveryCounter::default(),
        }
    }

    /// Counts each message's outcome (`shown`, `no_terminal`) in `counter`.
    pub(crate) fn counted(self, counter: DeliveryCounter) -> Self {
        Self { counter, ..self }
    }

    /// Writes `message` to its recipients' terminals (with `only`, to that
    /// user's alone) and records the receipt "shown" for each user whose
    /// terminal took it (a shared message is shown to each for themselves);
    /// the first time it is shown, its sender gets a receipt.
    pub(crate) async fn show(self: &Arc<Self>, message: Arc<StoredMessage>, only: Option<String>) {
        let (terminals, shown) = (self.clone(), message.clone());
        let reached = tokio::task::spawn_blocking(move || {
            write_all(
                &terminals.utmp_path,
                &terminals.computer_name,
                &shown,
                only.as_deref(),
            )
        })
        .await;
        let Ok(reached) = reached else {
            return;
        };
        let outcome = if reached.is_empty() {
            "no_terminal"
        } else {
            "shown"
        };
        self.counter.record("terminals", outcome);
        for user in &reached {
            if let Err(e) = self.inbox.mark_shown(message.id, Some(user)).await {
                tracing::warn!(id = message.id, user = %LogSafe(&user), error = %LogSafe(&e), "cannot record the receipt");
            }
        }
        if !reached.is_empty() && message.shown_at.is_none() {
            self.receipts.send(&message, ReceiptState::Shown);
        }
    }
}

impl Terminals {
    /// Store-and-forward: at `user`'s login, shows on their terminals the
    /// messages for them that no one has seen yet, received in the last
    /// `hours` (`[display] pending_hours`; 0: none).
    pub(crate) async fn show_pending(self: &Arc<Self>, user: String, hours: u64) {
        if hours == 0 {
            return;
        }
        let span = i64::try_from(hours)
            .unwrap_or(i64::MAX)
            .saturating_mul(3_600_000);
        let since = crate::store::now_ms().saturating_sub(span);
        match self.inbox.pending(&user, since).await {
            Ok(messages) => {
                for message in messages {
                    tracing::info!(id = message.id, user = %LogSafe(&user), "showing a message kept while away");
                    self.show(Arc::new(message), Some(user.clone())).await;
                }
            }
            Err(e) => {
                tracing::warn!(user = %LogSafe(&user), error = %LogSafe(&e), "cannot read waiting messages")
            }
        }
    }
}

impl DeliveryChannel for Terminals {
    fn name(&self) -> &'static str {
        "terminals"
    }

    /// Not when utmp, as read within the last second, lists no terminal
    /// of anyone the message is for: then there is nothing to write and no
    /// thread to hop to. When utmp must be read again, that read happens
    /// off the async workers, in [`Terminals::show`].
    fn wants(&self, message: &StoredMessage) -> bool {
        crate::system::users::fresh_login_terminals(&self.utmp_path).is_none_or(|terminals| {
            terminals.iter().any(|t| {
                message
                    .recipient_user
                    .as_ref()
                    .is_none_or(|user| *user == t.user)
            })
        })
    }

    fn deliver(self: Arc<Self>, message: Arc<StoredMessage>) {
        let shutdown = self.shutdown.clone();
        shutdown.spawn(async move { self.show(message, None).await });
    }
}

/// Writes a stored message to its recipients' terminals as utmp at `utmp`
/// lists them (with `only`, to that user's alone); logs each write and each
/// terminal skipped, with the reason, and returns the users (each once)
/// whose terminals took it. Blocking (file I/O, at most
/// [`TERMINAL_TIMEOUT`] per terminal): run it off the async workers.
fn write_all(
    utmp: &Path,
    computer_name: &str,
    message: &StoredMessage,
    only: Option<&str>,
) -> Vec<String> {
    let id = message.id;
    let mut reached: Vec<String> = Vec::new();
    let text = shown(message).terminal_text(computer_name);
    let mut seen: Vec<String> = Vec::new();
    for terminal in login_terminals(utmp) {
        let for_them = message
            .recipient_user
            .as_ref()
            .is_none_or(|u| *u == terminal.user)
            && only.is_none_or(|u| u == terminal.user);
        if !for_them || seen.contains(&terminal.line) {
            continue;
        }
        seen.push(terminal.line.clone());
        match write_terminal(&terminal, text.as_bytes()) {
            Ok(device) => {
                if !reached.contains(&terminal.user) {
                    reached.push(terminal.user.clone());
                }
                tracing::info!(
                    id,
                    user = %LogSafe(&terminal.user),
                    %device,
                    "message written to terminal"
                );
            }
            Err(reason) => tracing::info!(
                id,
                user = %LogSafe(&terminal.user),
                line = %terminal.line,
                %reason,
                "terminal skipped"
            ),
        }
    }
    reached
}

/// Why a terminal was not written to (or not completely).
#[derive(Debug, thiserror::Error)]
enum Skip {
    /// The utmp line is not `ttyNAME` or `pts/N`.
    #[error("not a terminal line")]
    NotATerminalLine,
    /// The user is not in the account database.
    #[error("no such user")]
    NoSuchUser,
    /// The device is a symbolic link (never followed).
    #[error("{0} is a symbolic link")]
    SymbolicLink(String),
    /// The device could not be opened.
    #[error("cannot open {0}: {1}")]
    Open(String, std::io::Error),
    /// Not a character device.
    #[error("{0} is not a character device")]
    NotACharacterDevice(String),
    /// The device belongs to someone else (a stale or forged utmp entry).
    #[error("{0} is owned by uid {1}, not by the user")]
    OtherOwner(String, u32),
    /// The owner turned messages off.
    #[error("{0} has messages turned off (mesg n)")]
    MesgN(String),
    /// Writing failed or did not finish in time.
    #[error("{0}: wrote {1} of {2} bytes: {3}")]
    Write(String, usize, usize, String),
}

/// Opens a terminal as write(1) would, without following links, becoming its
/// controlling terminal or blocking; checks it is a terminal of the user's
/// with `mesg y`; writes `bytes`. Returns the device path.
fn write_terminal(terminal: &LoginTerminal, bytes: &[u8]) -> Result<String, Skip> {
    let device = terminal_device(&terminal.line).ok_or(Skip::NotATerminalLine)?;
    let account = User::from_name(&terminal.user)
        .ok()
        .flatten()
        .ok_or(Skip::NoSuchUser)?;
    let file = OpenOptions::new()
        .write(true)
        .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW).bits())
        .open(&device)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                Skip::SymbolicLink(device.clone())
            } else {
                Skip::Open(device.clone(), e)
            }
        })?;
    let meta = file.metadata().map_err(|e| Skip::Open(device.clone(), e))?;
    if !meta.file_type().is_char_device() {
        return Err(Skip::NotACharacterDevice(device));
    }
    if meta.uid() != account.uid.as_raw() {
        return Err(Skip::OtherOwner(device, meta.uid()));
    }
    if meta.mode() & MESG_Y == 0 {
        return Err(Skip::MesgN(device));
    }
    write_bounded(file, bytes)
        .map_err(|(written, e)| Skip::Write(device.clone(), written, bytes.len(), e))?;
    Ok(device)
}

/// Writes all of `bytes` to a non-blocking file, waiting for room at most
/// [`TERMINAL_TIMEOUT`] in all; on failure, how much was written and why.
fn write_bounded(mut file: File, bytes: &[u8]) -> Result<(), (usize, String)> {
    let deadline = Instant::now() + TERMINAL_TIMEOUT;
    let mut written = 0;
    while written < bytes.len() {
        match file.write(&bytes[written..]) {
            Ok(0) => return Err((written, "the terminal took nothing".into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                let wait = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                if wait == 0 {
                    return Err((written, "timed out: the terminal is not reading".into()));
                }
                let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLOUT)];
                if let Err(e) = nix::poll::poll(&mut fds, wait) {
                    return Err((written, e.to_string()));
                }
            }
            Err(e) => return Err((written, e.to_string())),
        }
    }
    Ok(())
}
