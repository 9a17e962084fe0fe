//! Round-trip entry points for the fuzz targets (one per parser) and the tests
//! that replay the fuzz corpus: parse; if it parsed, emit, re-parse and compare.

pub use crate::alert::fuzz_alert as alert;
pub use crate::browse::fuzz_browse as browse;
pub use crate::http::fuzz_http as http;
pub use crate::nbds::fuzz_nbds as nbds;
pub use crate::nbns::{fuzz_name as name, fuzz_nbns as nbns};
pub use crate::nbss::fuzz_nbss as nbss;
pub use crate::site::fuzz_site as site;
pub use crate::site_broadcast::fuzz_site_broadcast as site_broadcast;
pub use crate::smb::mailslot::fuzz_mailslot as mailslot;
pub use crate::smb::message::fuzz_smb as smb;
