//! SMB1 as used by the messenger: the 32-byte header, the message commands and
//! the mailslot transaction.

pub mod header;
pub mod mailslot;
pub mod message;
