//! Command-line syntax: NET-compatible switches (`/ADD`, `/DELETE`, `/USERS`,
//! `/DOMAIN:NAME`, any case) are turned into clap options first.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// netsend: the Windows Messenger service (NET SEND / NET NAME) for Linux.
#[derive(Debug, Parser)]
#[command(name = "netsend", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Configuration file (TOML). Default: $NETSEND_CONFIG, else /etc/netsend/netsend.toml if it exists, else built-in defaults.
    #[arg(long, global = true, env = "NETSEND_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send a message: netsend send {NAME | * | /DOMAIN[:NAME] | /USERS} message text...
    Send {
        /// The sender name to claim (default: your user name; only root may claim another).
        #[arg(long)]
        from: Option<String>,
        /// Broadcasts only: send a text too long for one datagram as several parts.
        #[arg(long)]
        split: bool,
        /// Run the send on this host's messenger service instead (its
        /// administrators only; see `netsend remote key`).
        #[arg(long)]
        server: Option<String>,
        /// If the name cannot be reached now, keep the message in the
        /// outgoing queue and try again until it expires (`netsend queue`).
        #[arg(long, conflicts_with = "server")]
        queue: bool,
        /// With --queue: give up after this many minutes (default: the
        /// service's `[queue] expire_minutes`).
        #[arg(long, value_name = "MINUTES", requires = "queue")]
        expire: Option<u64>,
        /// The recipient, then the message words (joined with spaces; `-` reads stdin).
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Raise an administrative alert, sent to every `[alerter] names` entry:
    /// netsend alert [--class CLASS] [--service NAME] TEXT... (root and
    /// `[alerter] groups` only).
    Alert(crate::alert::AlertArgs),
    /// List message aliases, or add/delete/forward one: netsend name [ALIAS [/ADD | /DELETE | /FORWARD:HOST | /CANCEL]].
    Name {
        /// The alias.
        alias: Option<String>,
        /// Add the alias (NET NAME /ADD).
        #[arg(long, conflicts_with_all = ["delete", "forward", "cancel"], requires = "alias")]
        add: bool,
        /// Delete the alias (NET NAME /DELETE).
        #[arg(long, conflicts_with_all = ["forward", "cancel"], requires = "alias")]
        delete: bool,
        /// Run this on another host's messenger service (its administrators only).
        #[arg(long)]
        server: Option<String>,
        /// Forward the alias's messages to the alias at HOST, a name or an IPv4 address (NET FORWARD).
        #[arg(
            long,
            value_name = "HOST",
            conflicts_with = "cancel",
            requires = "alias"
        )]
        forward: Option<String>,
        /// Cancel the alias's forward (NET FORWARD /DELETE).
        #[arg(long, requires = "alias")]
        cancel: bool,
    },
    /// The receipts of a message you sent to a netsend host: netsend status ID
    /// (the id `send` printed).
    Status {
        /// The receipt id.
        id: i64,
    },
    /// Your queued messages (`send --queue`) and their state; `cancel ID`.
    Queue {
        /// `cancel ID` stops trying to deliver a waiting message.
        #[command(subcommand)]
        action: Option<QueueAction>,
    },
    /// The key that identifies you to other hosts' services for `--server`.
    Remote {
        /// What to do.
        #[command(subcommand)]
        action: RemoteAction,
    },
    /// Show received messages: the newest 20 (oldest first), like journalctl -n.
    Inbox {
        /// Print JSON (one array; with --follow one object per line).
        #[arg(long)]
        json: bool,
        /// Only unread messages.
        #[arg(long)]
        unread: bool,
        /// Keep running and print new messages as they arrive.
        #[arg(long, conflicts_with = "with")]
        follow: bool,
        /// Only messages whose sender, alias or text contains TEXT, in any case.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// How many: the newest 20, `-n N`, or `--all`.
        #[command(flatten)]
        newest: Newest,
        /// Only messages received since TIME: 2026-12-01, "2026-12-01 10:00" (UTC), or 30m, 1h, 2d ago.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only messages from the sender NAME (any case).
        #[arg(long, value_name = "NAME", conflicts_with = "with")]
        from: Option<String>,
        /// The exchange with NAME in both directions (received `<`, sent `>`), in time order.
        #[arg(long, value_name = "NAME", conflicts_with_all = ["search", "unread", "since"])]
        with: Option<String>,
        /// `read ID` shows one message in full and marks it read; `delete`
        /// removes messages.
        #[command(subcommand)]
        action: Option<InboxAction>,
    },
    /// A full-screen window on your inbox: read, reply, write, delete, and
    /// see new messages as they arrive (keys: `?`).
    Popup {
        /// Open on this message (the id `netsend inbox` lists).
        #[arg(long)]
        id: Option<i64>,
    },
    /// What you sent (directed, broadcast, /USERS, queued), with outcome and receipts: the newest 20.
    Sent {
        /// Print JSON (one array).
        #[arg(long)]
        json: bool,
        /// Only records whose recipient, sender or text contains TEXT, in any case.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// How many: the newest 20, `-n N`, or `--all`.
        #[command(flatten)]
        newest: Newest,
        /// Only what was sent to NAME (any case).
        #[arg(long, value_name = "NAME")]
        to: Option<String>,
    },
    /// Answer a received message: netsend reply ID message text... (`-` reads stdin).
    Reply {
        /// The message id (first column of `netsend inbox`).
        id: i64,
        /// The reply's words (joined with spaces).
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Answer each sender once an hour automatically: netsend away TEXT... / netsend away off / netsend away.
    Away {
        /// The away text, or `off`; none: show the away state.
        #[arg(num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Browse the LAN like NET VIEW: netsend view [\\HOST | /DOMAIN[:NAME]] [--json].
    View {
        /// `\\HOST`: that host's message names (node status); without it, the
        /// hosts of our workgroup.
        host: Option<String>,
        /// `/DOMAIN`: the workgroups heard; `/DOMAIN:NAME`: the hosts of NAME.
        #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", conflicts_with = "host")]
        domain: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Print only the names `netsend send` may be given (shell completion).
        #[arg(long, hide = true)]
        names: bool,
    },
    /// The site gateway: netsend gateway status [--json].
    Gateway {
        /// What to show.
        #[command(subcommand)]
        action: GatewayAction,
    },
    /// Show new messages as desktop notifications; run it as yourself inside
    /// your graphical session (XDG autostart: netsend-agent.desktop).
    Agent,
    /// Start, stop or query the messenger service.
    Messenger {
        /// What to do.
        #[command(subcommand)]
        action: MessengerAction,
    },
    /// Print a shell completion script: netsend completions {bash|zsh|fish|elvish|powershell}.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages netsend(1), one per subcommand and netsend.toml(5) into --out, or print netsend(1).
    Manpage {
        /// Directory to write the pages into (created if missing).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// How many entries a listing shows (`netsend inbox`, `netsend sent`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Newest {
    /// Show the newest N (default 20).
    #[arg(short = 'n', long = "lines", value_name = "N", conflicts_with = "all")]
    pub(crate) lines: Option<usize>,
    /// Show every one.
    #[arg(long)]
    pub(crate) all: bool,
}

/// Inbox sub-actions.
#[derive(Debug, Subcommand)]
pub(crate) enum InboxAction {
    /// Show one message in full, with its receipt, and mark it read.
    Read {
        /// The message id (first column of `netsend inbox`).
        id: i64,
    },
    /// Delete messages: yours are deleted, shared ones (to the computer name,
    /// broadcasts) hidden from you; root deletes any.
    Delete {
        /// The message ids.
        ids: Vec<i64>,
        /// Also every message already read.
        #[arg(long)]
        read: bool,
    },
}

/// Queue sub-actions.
#[derive(Debug, Subcommand)]
pub(crate) enum QueueAction {
    /// Stop trying to deliver a waiting message.
    Cancel {
        /// The queue id (first column of `netsend queue`).
        id: i64,
    },
}

/// Remote-call key management.
#[derive(Debug, Subcommand)]
pub(crate) enum RemoteAction {
    /// Print your public key (creating your key on first use), to be listed
    /// in a target host's `[remote] administrators` or `server_operators`.
    Key,
    /// Pin SERVER's key (as its `netsend messenger status` shows it) before
    /// the first call, or after it really changed; calls to SERVER then
    /// refuse any other key.
    Trust {
        /// The server, as given to --server (name, address or ADDRESS:PORT).
        server: String,
        /// Its public key (base64).
        key: String,
    },
}

/// Site gateway queries.
#[derive(Debug, Subcommand)]
pub(crate) enum GatewayAction {
    /// Show the connection to the NATS cluster, the stream and consumers,
    /// the names of other sites and the counters. Without `[gateway]` it
    /// fails with NERR_ServiceNotInstalled (2184), exit status 2.
    Status {
        /// Print one JSON object instead.
        #[arg(long)]
        json: bool,
    },
}

/// Service control.
#[derive(Debug, Subcommand)]
pub(crate) enum MessengerAction {
    /// Start the service (as a daemon unless --foreground).
    Start {
        /// Stay in the foreground, logging to stderr.
        #[arg(long)]
        foreground: bool,
    },
    /// Stop the running service.
    Stop,
    /// Show whether the service runs, and its names and addresses. Exit
    /// status: 0 running, 3 not running, 4 status unknown (the service
    /// could not be asked, e.g. permission denied or no answer).
    Status {
        /// Print one JSON object instead (`running` and every field of the
        /// human output; only `running` and `error` when it does not run).
        #[arg(long)]
        json: bool,
    },
}

/// Rewrites NET-style switches into long options, case-insensitively, and
/// lower-cases the command name and sub-command name. The words of a `send`
/// message, and every other argument (a key, a server), are left alone.
pub(crate) fn normalize(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut command: Option<String> = None;
    let mut sub_command_seen = false;
    let mut value_follows = false;
    for arg in args {
        if out.is_empty() || std::mem::take(&mut value_follows) {
            out.push(arg);
            continue;
        }
        // Options that take a separate value: keep the value as it is.
        if matches!(
            arg.as_str(),
            "--config" | "--from" | "--server" | "--search" | "--since" | "--with" | "--to"
        ) {
            value_follows = true;
            out.push(arg);
            continue;
        }
        if command.is_none() && !arg.starts_with('-') {
            let lower = arg.to_ascii_lowercase();
            command = Some(lower.clone());
            out.push(lower);
            continue;
        }
        if command.as_deref() == Some("name") && arg.starts_with('/') {
            let lower = arg.to_ascii_lowercase();
            out.push(match lower.as_str() {
                "/add" => "--add".to_owned(),
                "/delete" | "/del" | "/d" => "--delete".to_owned(),
                "/cancel" => "--cancel".to_owned(),
                _ if lower.starts_with("/forward:") => {
                    format!("--forward={}", &arg["/forward:".len()..])
                }
                _ => arg,
            });
            continue;
        }
        if command.as_deref() == Some("view") && arg.starts_with('/') {
            let lower = arg.to_ascii_lowercase();
            out.push(match lower.as_str() {
                "/domain" => "--domain".to_owned(),
                _ if lower.starts_with("/domain:") => {
                    format!("--domain={}", &arg["/domain:".len()..])
                }
                _ => arg,
            });
            continue;
        }
        let has_sub_commands = matches!(
            command.as_deref(),
            Some("messenger" | "inbox" | "remote" | "queue")
        );
        if has_sub_commands
            && !sub_command_seen
            && !arg.starts_with('-')
            && !arg.chars().all(|c| c.is_ascii_digit())
        {
            sub_command_seen = true;
            out.push(arg.to_ascii_lowercase());
            continue;
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Vec<String> {
        normalize(s.split(' ').map(String::from))
    }

    #[test]
    fn net_switches_become_options() {
        assert_eq!(
            norm("netsend NAME bob /ADD"),
            ["netsend", "name", "bob", "--add"]
        );
        assert_eq!(
            norm("netsend name bob /Delete"),
            ["netsend", "name", "bob", "--delete"]
        );
        assert_eq!(
            norm("netsend name bob /FORWARD:HostB"),
            ["netsend", "name", "bob", "--forward=HostB"]
        );
        assert_eq!(
            norm("netsend name bob /Cancel"),
            ["netsend", "name", "bob", "--cancel"]
        );
        assert_eq!(
            norm("netsend SEND bob /add me"),
            ["netsend", "send", "bob", "/add", "me"]
        );
        assert_eq!(
            norm("netsend Messenger START"),
            ["netsend", "messenger", "start"]
        );
        // Only the sub-command's name folds, never what follows it.
        assert_eq!(
            norm("netsend REMOTE Trust HostB AbC+/9="),
            ["netsend", "remote", "trust", "HostB", "AbC+/9="]
        );
        assert_eq!(
            norm("netsend inbox READ 12"),
            ["netsend", "inbox", "read", "12"]
        );
        assert_eq!(
            norm("netsend VIEW /Domain:labgroup"),
            ["netsend", "view", "--domain=labgroup"]
        );
        assert_eq!(
            norm("netsend view /DOMAIN"),
            ["netsend", "view", "--domain"]
        );
        assert_eq!(
            norm("netsend view \\\\Host"),
            ["netsend", "view", "\\\\Host"]
        );
    }

    #[test]
    fn clap_accepts_normalized_forms() {
        let cli = Cli::try_parse_from(norm("netsend name bob /add")).unwrap();
        assert!(matches!(cli.command, Command::Name { add: true, .. }));
        let cli = Cli::try_parse_from(norm("netsend name bob /forward:192.0.2.7")).unwrap();
        let Command::Name { forward, .. } = cli.command else {
            panic!()
        };
        assert_eq!(forward.as_deref(), Some("192.0.2.7"));
        assert!(Cli::try_parse_from(norm("netsend name bob /forward:x /delete")).is_err());
        let cli =
            Cli::try_parse_from(norm("netsend send /USERS This server will shut down")).unwrap();
        let Command::Send { words, .. } = cli.command else {
            panic!()
        };
        assert_eq!(words[0], "/USERS");
        assert_eq!(words.len(), 6);
    }
}
