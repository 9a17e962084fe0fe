//! Sans-IO wire codecs for the Windows Messenger protocols.
//!
//! # Layout
//! - [`alert`]: the Alerter's alert buffers (`STD_ALERT` and the classes'
//!   variable parts) and the NT alert texts 3000–3050.
//! - [`name`]: NetBIOS names, first-level encoding, scopes and label pointers.
//! - [`nbns`]: the name service on UDP 137 (queries, registrations, node status).
//! - [`nbds`]: the datagram service on UDP 138.
//! - [`nbss`]: the session service framing on TCP 139.
//! - [`smb`]: SMB1 headers, the messenger commands 0xD0/0xD5/0xD7/0xD6 and the
//!   `\MAILSLOT\MESSNGR` transaction.
//! - [`browse`]: the Browser protocol's `\\MAILSLOT\\BROWSE` frames.
//! - [`oem`]: OEM code pages and the text rules of message blocks.
//! - [`status`]: NERR/Win32 codes and SMB DOS errors with their texts.
//! - [`http`]: the HTTP/1.x request line the metrics endpoint reads.
//! - [`site_broadcast`]: a broadcast carried between sites by their gateways.
//!
//! # Contract
//! Every `parse`/`read` function takes untrusted bytes and returns a typed
//! [`DecodeError`] on truncated, malformed or oversized input; none panics and
//! none allocates more than a small multiple of its input, because every length
//! and count is checked against the bytes present and a named `MAX_*` bound before
//! it is used. Every `emit` writes exactly `buffer_len()` bytes, and
//! `parse(emit(x)) == x` for every value `x` that `emit` accepts. This crate does
//! no IO and reads no clock.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod alert;
pub mod browse;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod name;
pub mod nbds;
pub mod nbns;
pub mod nbss;
pub mod oem;
pub mod reader;
pub mod site;
pub mod site_broadcast;
pub mod smb;
pub mod status;
#[cfg(test)]
mod test_util;

pub use error::{DecodeError, EncodeError, NameError};
pub use name::{NetbiosName, WireName};
pub use oem::CodePage;
pub use reader::Reader;
