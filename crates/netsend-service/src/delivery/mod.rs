//! What happens to a message once it is durable: each `DeliveryChannel`
//! that wants it gets the stored message, in memory, and starts its own
//! work. The acknowledgement never waits for a channel: the receive path
//! calls `Delivery::deliver` after the commit and goes on at once.
//!
//! The channels, one file each:
//! - [`terminals`]: the recipients' terminals (`[display] terminals`);
//! - `message_log`: NET LOG's file (`[log] messages`);
//! - `hooks`: the `[[hooks]]` programs and URLs, in bounded slots;
//! - `forward`: an alias forwarded to another host, in bounded slots.
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

pub(crate) mod forward;
pub(crate) mod hooks;
pub(crate) mod message_log;
pub(crate) mod receipts;
pub mod terminals;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::naming::aliases::AliasTable;
use crate::shutdown::Shutdown;
use crate::store::{InboxHandle, StoredMessage};
use crate::system::host::Host;

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

/// The registered channels, built from the configuration at start and
/// again at each reload (forwarding, whose forwards are set at run time,
/// is built once).
pub(crate) struct Delivery {
    channels: std::sync::RwLock<Arc<Channels>>,
    forward: Arc<Forward>,
}

/// The channels a configuration turns on.
struct Channels {
    channels: Vec<Arc<dyn DeliveryChannel>>,
    terminals: Option<Arc<Terminals>>,
    receipts: Receipts,
}

/// What every channel is built from: the configuration and the handles
/// [`Delivery::from_config`] documents.
pub(crate) struct Parts<'a> {
    /// The configuration in force.
    pub(crate) config: &'a Config,
    /// This host's interfaces and addresses.
    pub(crate) host: &'a Host,
    /// The alias table.
    pub(crate) aliases: &'a Arc<Mutex<AliasTable>>,
    /// The inbox, for "shown".
    pub(crate) inbox: &'a InboxHandle,
    /// The tracker every channel's tasks run on.
    pub(crate) shutdown: &'a Shutdown,
    /// Where every channel counts its outcomes.
    pub(crate) counter: crate::metrics::DeliveryCounter,
}

impl Channels {
    /// Every channel `parts.config` turns on, then `forward`.
    fn build(parts: &Parts<'_>, forward: Arc<Forward>) -> Self {
        let Parts {
            config,
            host,
            aliases,
            inbox,
            shutdown,
            ref counter,
        } = *parts;
        let receipts = Receipts::from_config(config, &host.interfaces, aliases, shutdown);
        let terminals = config.display.writes_terminals().then(|| {
            Arc::new(
                Terminals::new(
                    config.utmp_path.clone(),
                    config.computer_name.clone(),
                    inbox.clone(),
                    receipts.clone(),
                    shutdown.clone(),
                )
                .counted(counter.clone()),
            )
        });
        let mut channels = Self {
            channels: Vec::new(),
            terminals: terminals.clone(),
            receipts,
        };
        if let Some(terminals) = terminals {
            channels.register(terminals);
        }
        if config.log.messages {
            let log = message_log::MessageLog::from_config(config, shutdown.clone())
                .counted(counter.clone());
            channels.register(Arc::new(log));
        }
        if !config.hooks.is_empty() {
            let hooks =
                hooks::HookRunner::new(&config.hooks, shutdown.clone()).counted(counter.clone());
            channels.register(Arc::new(hooks));
        }
        channels.register(forward);
        channels
    }

    /// Adds `channel`, after those registered before it.
    fn register(&mut self, channel: Arc<dyn DeliveryChannel>) {
        self.channels.push(channel);
    }
}

impl Delivery {
    /// Every channel the configuration turns on: terminals, the message log,
    /// hooks and forwarding (always: forwards are set at run time). `host`
    /// tells this host apart, the alias table gives forwards and the
    /// computer name, `inbox` records a terminal's "shown", `send_path`
    /// carries forwarded copies, and every channel's tasks (and the
    /// receipts') run on `shutdown`'s tracker, so a stop waits for them.
    pub(crate) fn from_config(parts: &Parts<'_>, send_path: Arc<dyn SendPath>) -> Self {
        let forward = Arc::new(
            Forward::new(
                parts.config,
                &parts.host.interfaces,
                &parts.host.session_addresses,
                parts.aliases.clone(),
                send_path,
                parts.shutdown.clone(),
            )
            .counted(parts.counter.clone()),
        );
        Self {
            channels: std::sync::RwLock::new(Arc::new(Channels::build(parts, forward.clone()))),
            forward,
        }
    }

    /// Builds the channels again from a reloaded configuration. A message
    /// handed over before keeps the channels it was given to; each one
    /// stored after goes to the new ones.
    pub(crate) fn reconfigure(&self, parts: &Parts<'_>) {
        let channels = Arc::new(Channels::build(parts, self.forward.clone()));
        *self.channels.write().expect("delivery channels lock") = channels;
    }

    /// Adds `channel` after the others (tests: a recording channel).
    #[cfg(test)]
    fn register(&self, channel: Arc<dyn DeliveryChannel>) {
        let mut channels = self.channels.write().expect("delivery channels lock");
        Arc::get_mut(&mut channels)
            .expect("no message is being delivered")
            .register(channel);
    }

    /// The channels in force.
    fn current(&self) -> Arc<Channels> {
        self.channels
            .read()
            .expect("delivery channels lock")
            .clone()
    }

    /// Hands a durable message to every channel that wants it.
    pub(crate) fn deliver(&self, message: StoredMessage) {
        let message = Arc::new(message);
        for channel in &self.current().channels {
            if channel.wants(&message) {
                tracing::debug!(id = message.id, channel = channel.name(), "delivering");
                channel.clone().deliver(message.clone());
            }
        }
    }

    /// The terminals channel, when `[display] terminals` is on (for the
    /// messages kept while a user was away).
    pub(crate) fn terminals(&self) -> Option<Arc<Terminals>> {
        self.current().terminals.clone()
    }

    /// The forwarding channel (to set and cancel forwards).
    pub(crate) fn forward(&self) -> &Forward {
        &self.forward
    }

    /// The receipts sent to a message's sender.
    pub(crate) fn receipts(&self) -> Receipts {
        self.current().receipts.clone()
    }
}
