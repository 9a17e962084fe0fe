//! What happens to a message once it is durable: each `DeliveryChannel`
//! that wants it gets the stored message, in memory, and starts its own
//! work. The acknowledgement never waits for a channel: the receive path
//! calls `Delivery::deliver` after the commit and goes on at once.
//!
//! The channels, one file each:
//! - [`terminals`]: the recipients' terminals (`[display] terminals`);
//! - `message_log`: NET LOG's file (`[log] messages`);
//! - `hooks`: the `[[hooks]]` programs and URLs, in bounded slots;
//! - `forward`: an alias forwarded to another host, in bounded slots;
//! - `away`: the automatic answers of users who are away, in bounded slots
//!   (where a reply goes is `reply`'s, shared with `netsend reply`).
//!
//! Receipts (`receipts`) are no channel: a receipt tells the sender that
//! its message was *shown* or *read*, which happens later (a terminal took
//! it, `netsend agent` showed it, `netsend inbox read`), never when it is
//! stored. They have their own file and component, which the terminals
//! channel and the control handlers use.
//!
//! # Adding a channel
//! 1. A file here with a type that implements `DeliveryChannel`: `wants`
//!    decides cheaply (no I/O) whether a message is for it; `deliver`
//!    spawns the work and returns at once. Work a flood of messages could
//!    pile up goes in `TaskSlots`.
//! 2. One `register` line in `Delivery::from_config`, with the
//!    dependencies it needs passed in (config pieces, handles), never the
//!    whole service.
//! 3. An in-process test beside the others in `delivery/tests.rs`, with
//!    real components (files, processes, sockets, the real inbox).

pub(crate) mod away;
pub(crate) mod forward;
pub(crate) mod hooks;
pub(crate) mod message_log;
pub(crate) mod receipts;
pub(crate) mod reply;
pub mod terminals;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::naming::aliases::AliasTable;
use crate::shutdown::Shutdown;
use crate::store::{InboxHandle, StoredMessage};
use crate::system::host::Host;

use away::{Away, AwayBook};
use forward::{Forward, SendPath};
use receipts::Receipts;
use terminals::Terminals;

/// Somewhere a stored message goes: a terminal, a log, a program, a host.
pub(crate) trait DeliveryChannel: Send + Sync {
    /// The channel's name, for logs.
    fn name(&self) -> &'static str;

    /// Whether `message` is for this channel; cheap, no I/O.
    fn wants(&self, message: &StoredMessage) -> bool;

    /// Starts delivering `message` and returns at once: the work runs on
    /// its own tasks (bounded where a flood could pile it up), so the
    /// receive path is never held up.
    fn deliver(self: Arc<Self>, message: Arc<StoredMessage>);
}

/// The registered channels, built once from the configuration.
pub(crate) struct Delivery {
    channels: Vec<Arc<dyn DeliveryChannel>>,
    terminals: Option<Arc<Terminals>>,
    forward: Arc<Forward>,
    receipts: Receipts,
    away: Arc<AwayBook>,
}

impl Delivery {
    /// Every channel the configuration turns on: terminals, the message log,
    /// hooks, forwarding and away messages (always: forwards and absences
    /// are set at run time). `host`
    /// tells this host apart, the alias table gives forwards and the
    /// computer name, `inbox` records a terminal's "shown", `send_path`
    /// carries forwarded copies, and every channel's tasks (and the
    /// receipts') run on `shutdown`'s tracker, so a stop waits for them.
    pub(crate) fn from_config(
        config: &Config,
        host: &Host,
        aliases: &Arc<Mutex<AliasTable>>,
        inbox: &InboxHandle,
        send_path: Arc<dyn SendPath>,
        shutdown: &Shutdown,
    ) -> Self {
        let receipts = Receipts::from_config(config, &host.interfaces, aliases, shutdown);
        let terminals = config.display.writes_terminals().then(|| {
            Arc::new(Terminals::new(
                config.utmp_path.clone(),
                config.computer_name.clone(),
                inbox.clone(),
                receipts.clone(),
                shutdown.clone(),
            ))
        });
        let forward = Arc::new(Forward::new(
            config,
            &host.interfaces,
            &host.session_addresses,
            aliases.clone(),
            send_path.clone(),
            shutdown.clone(),
        ));
        let book = Arc::new(AwayBook::default());
        let away = Away::new(
            config,
            &host.interfaces,
            &host.session_addresses,
            book.clone(),
            send_path,
            inbox.clone(),
            shutdown.clone(),
        );
        let mut delivery = Self {
            channels: Vec::new(),
            terminals: terminals.clone(),
            forward: forward.clone(),
            receipts,
            away: book,
        };
        if let Some(terminals) = terminals {
            delivery.register(terminals);
        }
        if config.log.messages {
            let log = message_log::MessageLog::from_config(config, shutdown.clone());
            delivery.register(Arc::new(log));
        }
        if !config.hooks.is_empty() {
            let hooks = hooks::HookRunner::new(&config.hooks, shutdown.clone());
            delivery.register(Arc::new(hooks));
        }
        delivery.register(forward);
        delivery.register(Arc::new(away));
        delivery
    }

    /// Adds `channel`, after those registered before it.
    fn register(&mut self, channel: Arc<dyn DeliveryChannel>) {
        self.channels.push(channel);
    }

    /// Hands a durable message to every channel that wants it.
    pub(crate) fn deliver(&self, message: StoredMessage) {
        let message = Arc::new(message);
        for channel in &self.channels {
            if channel.wants(&message) {
                tracing::debug!(id = message.id, channel = channel.name(), "delivering");
                channel.clone().deliver(message.clone());
            }
        }
    }

    /// The terminals channel, when `[display] terminals` is on (for the
    /// messages kept while a user was away).
    pub(crate) fn terminals(&self) -> Option<&Arc<Terminals>> {
        self.terminals.as_ref()
    }

    /// The forwarding channel (to set and cancel forwards).
    pub(crate) fn forward(&self) -> &Forward {
        &self.forward
    }

    /// Who is away, for the control handlers and the away channel.
    pub(crate) fn away(&self) -> &Arc<AwayBook> {
        &self.away
    }

    /// The receipts sent to a message's sender.
    pub(crate) fn receipts(&self) -> &Receipts {
        &self.receipts
    }
}
