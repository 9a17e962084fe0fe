//! Sans-IO state machines of the messenger: deterministic, no sockets, no clock.
//!
//! # Layout
//! - [`session`]: the server side of one session-service connection.
//! - [`sender`]: the client side of one directed message.
//! - [`message`]: a received message decoded for people.
//! - [`delivery_tag`]: one message's identity across a sender's retries, so a repeat is stored once.
//! - [`mailslot`]: which `\\MAILSLOT\\MESSNGR` datagrams are ours, and their message.
//! - [`browse`]: the browse announcements we send, and the host list of those we hear.
//! - [`broadcast`]: the MESSNGR datagrams of a broadcast, and where they go.
//! - [`relay`]: which received broadcasts we relay into our subnets, and where.
//! - [`site_broadcast`]: which broadcasts a site gateway publishes between sites and re-broadcasts.
//! - [`registration`]: B-node name registration, release and conflicts.
//! - [`policy`]: anti-spam: allow/deny lists and rate limits per source and sender.
//! - [`queue`]: when a queued outgoing message is tried again or given up.
//! - [`alert`]: the Alerter: batching, the cap, the disk watch rule, alert texts.
//! - [`receipt`]: receipts (shown, read) from a receiving netsend host to the sender.
//! - [`search`]: inbox search texts, checked and bounded.
//! - [`resolver`]: a name query client (broadcast or unicast), time passed in.
//! - [`plan`]: where a name is looked for, in which order, and duplicates.
//! - [`interface`]: the interfaces a host serves, and who is on their link.
//! - [`responder`]: which name service requests we answer, and how.
//! - [`wins`]: registering names with a WINS server.
//! - [`wins_server`]: the WINS server: registration with challenges, release, query, bounds.
//! - [`display`]: messages made safe and readable for terminals and notifications.
//! - [`hooks`]: delivery hooks: which fire, their argv, notification titles.
//! - [`forward`]: forwarding an alias to another host, and its loop rule.
//! - [`reply`]: where a reply to a received message goes (name, address, fallback).
//! - [`away`]: which messages get an automatic answer while a user is away.
//! - [`trust`]: verified senders: pinned host keys, message marks, names that must come verified.
//! - [`directory`]: the name directory between sites: entries, refresh, answers.
//! - [`fuzzing`]: entry points for the fuzz targets.
#![warn(missing_docs)]

pub mod alert;
pub mod away;
pub mod broadcast;
pub mod browse;
pub mod delivery_tag;
pub mod directory;
pub mod display;
pub mod forward;
pub mod fuzzing;
pub mod hooks;
pub mod interface;
pub mod mailslot;
pub mod message;
pub mod plan;
pub mod policy;
pub mod queue;
pub mod receipt;
pub mod registration;
pub mod relay;
pub mod reply;
pub mod resolver;
pub mod responder;
pub mod search;
pub mod sender;
pub mod session;
pub mod site_broadcast;
pub mod sites;
pub mod trust;
pub mod wins;
pub mod wins_server;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
