//! Who may reach the service: per-source connection caps and the counted
//! reasons for what was dropped.

pub(crate) mod drops;
pub(crate) mod slots;
