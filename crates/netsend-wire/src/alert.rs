//! The Alerter's alerts as programs raise them with `NetAlertRaise` and
//! `NetAlertRaiseEx` (`lmalert.h`), and the NT alert texts they name.
//!
//! An alert buffer is the fixed `STD_ALERT` header ([`StdAlert`]: time stamp,
//! event name, service name) followed by the variable part of its class
//! ([`AlertInfo`]): `ADMIN_OTHER_INFO` and `USER_OTHER_INFO` (an error code and
//! up to nine merge strings), `PRINT_OTHER_INFO` (a print job and five
//! strings), `ERRLOG_OTHER_INFO` (an error code and a log offset); MESSAGE
//! alerts, for which Windows documents no structure, use the ADMIN layout.
//! `NetAlertRaiseEx` passes the variable part alone. DWORDs are
//! little-endian and strings consecutive NUL-terminated UTF-16LE, as the
//! structures lie in memory on every platform netsend builds for.
//!
//! Bytes after the strings a structure announces are ignored: Windows callers
//! pass the size of the array they built the alert in (the SDK sample passes
//! 255 bytes around one string). Unpaired surrogates in a string become
//! U+FFFD, as for message texts.
//!
//! [`AlertInfo::render`] turns an alert into the text the Alerter sends: an
//! ADMIN, USER or MESSAGE alert whose error code is one of the NT alert texts
//! 3000–3050 ([`alert_text`]) is that text with its merge strings in place of
//! `%1`..`%9`; anything else is its strings.

use crate::error::{DecodeError, EncodeError};
use crate::reader::Reader;
use crate::status::NetApiStatus;

/// `EVLEN`: longest event (alert class) name, in UTF-16 code units.
pub const EVLEN: usize = 16;
/// `SNLEN`: longest service name, in UTF-16 code units.
pub const SNLEN: usize = 80;
/// `sizeof(STD_ALERT)`: a DWORD and the two NUL-terminated name arrays.
pub const STD_ALERT_LEN: usize = 4 + 2 * (EVLEN + 1) + 2 * (SNLEN + 1);
/// Largest alert buffer the Alerter takes, header included.
pub const MAX_ALERT_LEN: usize = 512;
/// Largest variable part (`NetAlertRaiseEx`'s `VariableInfoSize`).
pub const MAX_VARIABLE_INFO_LEN: usize = MAX_ALERT_LEN - STD_ALERT_LEN;
/// Most merge strings an ADMIN or USER alert carries (`%1`..`%9`).
pub const MAX_MERGE_STRINGS: usize = 9;
/// Longest text [`AlertInfo::render`] returns, in UTF-8 bytes: the longest NT
/// text with every merge of its placeholders as long as the whole variable
/// part allows, with room to spare.
pub const MAX_RENDERED_LEN: usize = 4096;

/// An alert class with a defined variable part (`ALERT_*_EVENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertClass {
    /// `ALERT_ADMIN_EVENT` ("ADMIN"): `ADMIN_OTHER_INFO`.
    Admin,
    /// `ALERT_USER_EVENT` ("USER"): `USER_OTHER_INFO`.
    User,
    /// `ALERT_PRINT_EVENT` ("PRINTING"): `PRINT_OTHER_INFO`.
    Printing,
    /// `ALERT_ERRORLOG_EVENT` ("ERRORLOG"): `ERRLOG_OTHER_INFO`.
    ErrorLog,
    /// `ALERT_MESSAGE_EVENT` ("MESSAGE"): Windows documents no variable part
    /// for it; netsend reads the `ADMIN_OTHER_INFO` layout.
    Message,
}

impl AlertClass {
    /// Every class, in `lmalert.h` order.
    pub const ALL: [Self; 5] = [
        Self::Admin,
        Self::User,
        Self::Printing,
        Self::ErrorLog,
        Self::Message,
    ];

    /// The event name as `lmalert.h` spells it.
    pub const fn event_name(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::User => "USER",
            Self::Printing => "PRINTING",
            Self::ErrorLog => "ERRORLOG",
            Self::Message => "MESSAGE",
        }
    }

    /// The class an event name stands for (case-insensitive, as Windows
    /// compares them); `None` for user-defined classes, whose variable part
    /// netsend cannot read.
    pub fn from_event_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|class| class.event_name().eq_ignore_ascii_case(name))
    }
}

/// `STD_ALERT`: the header `NetAlertRaise`'s buffer starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdAlert {
    /// `alrt_timestamp`: when the alert was raised, in seconds since 1970.
    pub timestamp: u32,
    /// `alrt_eventname`: the alert class, at most [`EVLEN`] code units.
    pub event_name: String,
    /// `alrt_servicename`: the raising service, at most [`SNLEN`] code units.
    pub service_name: String,
}

impl StdAlert {
    /// Reads the header from the first [`STD_ALERT_LEN`] bytes of `r`. Each
    /// name must end with a NUL inside its array; bytes after it are ignored.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let timestamp = r.u32_le("alrt_timestamp")?;
        let event_name = fixed_name(r, EVLEN, "alrt_eventname")?;
        let service_name = fixed_name(r, SNLEN, "alrt_servicename")?;
        Ok(Self {
            timestamp,
            event_name,
            service_name,
        })
    }

    /// Writes the header: [`STD_ALERT_LEN`] bytes, the names NUL-padded.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend(self.timestamp.to_le_bytes());
        write_fixed_name(out, &self.event_name, EVLEN, "alrt_eventname")?;
        write_fixed_name(out, &self.service_name, SNLEN, "alrt_servicename")
    }
}

/// Reads a name array of `max + 1` UTF-16 units holding a NUL-terminated name.
fn fixed_name(r: &mut Reader<'_>, max: usize, field: &'static str) -> Result<String, DecodeError> {
    let bytes = r.take(2 * (max + 1), field)?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    if units.len() > max {
        return Err(DecodeError::malformed(field, "no NUL within the array"));
    }
    String::from_utf16(&units).map_err(|_| DecodeError::malformed(field, "invalid UTF-16"))
}

/// Writes `name` into an array of `max + 1` UTF-16 units, NUL-padded.
fn write_fixed_name(
    out: &mut Vec<u8>,
    name: &str,
    max: usize,
    field: &'static str,
) -> Result<(), EncodeError> {
    let units: Vec<u16> = name.encode_utf16().collect();
    if units.len() > max {
        return Err(EncodeError::TooLong {
            field,
            len: units.len(),
            max,
        });
    }
    if units.contains(&0) {
        return Err(EncodeError::Unencodable {
            field,
            reason: "a name cannot hold NUL",
        });
    }
    let padding = max + 1 - units.len();
    out.extend(
        units
            .into_iter()
            .chain(std::iter::repeat_n(0, padding))
            .flat_map(u16::to_le_bytes),
    );
    Ok(())
}

/// `ADMIN_OTHER_INFO` or `USER_OTHER_INFO` and the merge strings after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeInfo {
    /// `alrtad_errcode` / `alrtus_errcode`: the alert text to use (3000–3050),
    /// or another code (`(DWORD)-1` for free text) to send the strings alone.
    pub errcode: u32,
    /// The merge strings (`alrtad_numstrings` of them, at most
    /// [`MAX_MERGE_STRINGS`]).
    pub strings: Vec<String>,
}

/// `PRINT_OTHER_INFO` and the five strings after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintInfo {
    /// `alrtpr_jobid`.
    pub job_id: u32,
    /// `alrtpr_status`: `PRJOB_*` bits ([`PrintInfo::status_words`]).
    pub status: u32,
    /// `alrtpr_submitted`: seconds since 1970.
    pub submitted: u32,
    /// `alrtpr_size`: the job's size in bytes.
    pub size: u32,
    /// The computer that submitted the job.
    pub computer: String,
    /// The user who submitted it.
    pub user: String,
    /// The print queue.
    pub queue: String,
    /// The print destination (printer).
    pub destination: String,
    /// The status as the printer described it (may be empty).
    pub status_text: String,
}

/// `ERRLOG_OTHER_INFO`: an entry written to the error log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorLogInfo {
    /// `alrter_errcode`: the error that was logged.
    pub errcode: u32,
    /// `alrter_offset`: where the new entry is in the log.
    pub offset: u32,
}

/// The variable part of an alert, by class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertInfo {
    /// An ADMIN alert.
    Admin(MergeInfo),
    /// A USER alert.
    User(MergeInfo),
    /// A PRINTING alert.
    Printing(PrintInfo),
    /// An ERRORLOG alert.
    ErrorLog(ErrorLogInfo),
    /// A MESSAGE alert.
    Message(MergeInfo),
}

/// `PRJOB_QSTATUS` values, by the two low bits of `alrtpr_status`.
const QUEUE_STATES: [&str; 4] = ["queued", "paused", "spooling", "printing"];
/// `PRJOB_*` device status and deletion bits.
const STATUS_BITS: [(u32, &str); 8] = [
    (0x4, "complete"),
    (0x8, "needs intervention"),
    (0x10, "error"),
    (0x20, "destination offline"),
    (0x40, "destination paused"),
    (0x80, "notify"),
    (0x100, "destination out of paper"),
    (0x8000, "deleted"),
];

impl PrintInfo {
    /// The `PRJOB_*` bits of [`PrintInfo::status`] in words: the queue state,
    /// then each device status flag set, e.g. `["printing", "complete"]`.
    pub fn status_words(&self) -> Vec<&'static str> {
        let queue = QUEUE_STATES[(self.status & 0x3) as usize];
        std::iter::once(queue)
            .chain(
                STATUS_BITS
                    .iter()
                    .filter(|(bit, _)| self.status & bit != 0)
                    .map(|&(_, word)| word),
            )
            .collect()
    }
}

impl AlertInfo {
    /// Parses the variable part of a `class` alert (at most
    /// [`MAX_VARIABLE_INFO_LEN`] bytes; bytes after its strings are ignored).
    pub fn parse(class: AlertClass, bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = bounded(bytes, MAX_VARIABLE_INFO_LEN, "alert variable info")?;
        Ok(match class {
            AlertClass::Admin => Self::Admin(MergeInfo::read(&mut r, "ADMIN_OTHER_INFO")?),
            AlertClass::User => Self::User(MergeInfo::read(&mut r, "USER_OTHER_INFO")?),
            AlertClass::Message => Self::Message(MergeInfo::read(&mut r, "MESSAGE alert info")?),
            AlertClass::Printing => Self::Printing(PrintInfo {
                job_id: r.u32_le("alrtpr_jobid")?,
                status: r.u32_le("alrtpr_status")?,
                submitted: r.u32_le("alrtpr_submitted")?,
                size: r.u32_le("alrtpr_size")?,
                computer: wide_string(&mut r, "print computer name")?,
                user: wide_string(&mut r, "print user name")?,
                queue: wide_string(&mut r, "print queue name")?,
                destination: wide_string(&mut r, "print destination")?,
                status_text: wide_string(&mut r, "print status")?,
            }),
            AlertClass::ErrorLog => Self::ErrorLog(ErrorLogInfo {
                errcode: r.u32_le("alrter_errcode")?,
                offset: r.u32_le("alrter_offset")?,
            }),
        })
    }

    /// The class this variable part belongs to.
    pub const fn class(&self) -> AlertClass {
        match self {
            Self::Admin(_) => AlertClass::Admin,
            Self::User(_) => AlertClass::User,
            Self::Printing(_) => AlertClass::Printing,
            Self::ErrorLog(_) => AlertClass::ErrorLog,
            Self::Message(_) => AlertClass::Message,
        }
    }

    /// Writes the variable part. Fails on more than [`MAX_MERGE_STRINGS`]
    /// strings, a string holding NUL, or more than [`MAX_VARIABLE_INFO_LEN`]
    /// bytes in all.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        match self {
            Self::Admin(info) | Self::User(info) | Self::Message(info) => {
                if info.strings.len() > MAX_MERGE_STRINGS {
                    return Err(EncodeError::TooLong {
                        field: "merge strings",
                        len: info.strings.len(),
                        max: MAX_MERGE_STRINGS,
                    });
                }
                out.extend(info.errcode.to_le_bytes());
                // At most nine, checked above.
                out.extend((info.strings.len() as u32).to_le_bytes());
                for string in &info.strings {
                    write_wide_string(&mut out, string)?;
                }
            }
            Self::Printing(info) => {
                for dword in [info.job_id, info.status, info.submitted, info.size] {
                    out.extend(dword.to_le_bytes());
                }
                for string in [
                    &info.computer,
                    &info.user,
                    &info.queue,
                    &info.destination,
                    &info.status_text,
                ] {
                    write_wide_string(&mut out, string)?;
                }
            }
            Self::ErrorLog(info) => {
                out.extend(info.errcode.to_le_bytes());
                out.extend(info.offset.to_le_bytes());
            }
        }
        if out.len() > MAX_VARIABLE_INFO_LEN {
            return Err(EncodeError::TooLong {
                field: "alert variable info",
                len: out.len(),
                max: MAX_VARIABLE_INFO_LEN,
            });
        }
        Ok(out)
    }

    /// The alert as the Alerter sends it: see the module documentation. The
    /// text is at most [`MAX_RENDERED_LEN`] bytes; it is not sanitised (the
    /// receiver sanitises what it shows).
    pub fn render(&self) -> String {
        match self {
            Self::Admin(info) | Self::User(info) | Self::Message(info) => {
                match alert_text(info.errcode) {
                    Some(text) => merge(text, &info.strings),
                    None if !info.strings.is_empty() => info.strings.join("\n"),
                    None => logged_error(info.errcode, "Alert"),
                }
            }
            Self::Printing(info) => {
                let status = if info.status_text.is_empty() {
                    info.status_words().join(", ")
                } else {
                    info.status_text.clone()
                };
                format!(
                    "Print job {} ({} bytes) for {} on {}, queue {} on {}: {}",
                    info.job_id,
                    info.size,
                    info.user,
                    info.computer,
                    info.queue,
                    info.destination,
                    status
                )
            }
            Self::ErrorLog(info) => match alert_text(info.errcode) {
                Some(text) => merge(text, &[]),
                None => format!(
                    "{} (error log entry at offset {}.)",
                    logged_error(info.errcode, "Error"),
                    info.offset
                ),
            },
        }
    }
}

/// A code without an alert text: its NERR/Win32 text where the table knows
/// it, else `"{what} {code}."`.
fn logged_error(code: u32, what: &str) -> String {
    match NetApiStatus(code).text() {
        Some(text) => format!("{what} {code}: {text}"),
        None => format!("{what} {code}."),
    }
}

impl MergeInfo {
    /// Reads the error code, the string count and the strings.
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let errcode = r.u32_le(field)?;
        let count = r.u32_le(field)?;
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| n <= MAX_MERGE_STRINGS)
            .ok_or(DecodeError::TooLong {
                field: "merge strings",
                len: usize::try_from(count).unwrap_or(usize::MAX),
                max: MAX_MERGE_STRINGS,
            })?;
        let strings = (0..count)
            .map(|_| wide_string(r, "merge string"))
            .collect::<Result<_, _>>()?;
        Ok(Self { errcode, strings })
    }
}

/// A reader over `bytes`, which may be at most `max` long.
fn bounded<'a>(
    bytes: &'a [u8],
    max: usize,
    field: &'static str,
) -> Result<Reader<'a>, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLong {
            field,
            len: bytes.len(),
            max,
        });
    }
    Ok(Reader::new(bytes))
}

/// Reads one NUL-terminated UTF-16LE string (the NUL consumed).
fn wide_string(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
    let mut units = Vec::new();
    loop {
        match r.u16_le(field)? {
            0 => return Ok(String::from_utf16_lossy(&units)),
            unit => units.push(unit),
        }
    }
}

/// Writes `text` as a NUL-terminated UTF-16LE string.
fn write_wide_string(out: &mut Vec<u8>, text: &str) -> Result<(), EncodeError> {
    if text.contains('\0') {
        return Err(EncodeError::Unencodable {
            field: "alert string",
            reason: "a string cannot hold NUL",
        });
    }
    out.extend(
        text.encode_utf16()
            .chain(std::iter::once(0))
            .flat_map(u16::to_le_bytes),
    );
    Ok(())
}

/// A `NetAlertRaise` buffer: the header and the variable part of the class it
/// names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaisedAlert {
    /// The `STD_ALERT` header.
    pub header: StdAlert,
    /// What follows it (`ALERT_OTHER_INFO(buffer)`).
    pub info: AlertInfo,
}

impl RaisedAlert {
    /// Parses a whole buffer (at most [`MAX_ALERT_LEN`] bytes). An event name
    /// without a variable part netsend reads is malformed.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = bounded(bytes, MAX_ALERT_LEN, "alert buffer")?;
        let header = StdAlert::read(&mut r)?;
        let class = AlertClass::from_event_name(&header.event_name).ok_or(
            DecodeError::malformed("alrt_eventname", "unknown alert class"),
        )?;
        let info = AlertInfo::parse(class, r.rest())?;
        Ok(Self { header, info })
    }

    /// Writes the header and the variable part.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(MAX_ALERT_LEN);
        self.header.write(&mut out)?;
        out.extend(self.info.to_bytes()?);
        Ok(out)
    }
}

/// The NT alert texts (netmsg.dll, `ALERT_BASE` 3000 to 3050), English;
/// codes not listed have no text.
const ALERT_TEXTS: &[(u32, &str)] = &[
    (
        3000,
        "Drive %1 is nearly full. %2 bytes are available.\n\
         Please warn users and delete unneeded files.",
    ),
    (
        3001,
        "%1 errors were logged in the last %2 minutes.\n\
         Please review the server's error log.",
    ),
    (
        3002,
        "%1 network errors occurred in the last %2 minutes.\n\
         Please review the server's error log. The server and/or \
         network hardware may need service.",
    ),
    (
        3003,
        "There were %1 bad password attempts in the last %2 minutes.\n\
         Please review the server's audit trail.",
    ),
    (
        3004,
        "There were %1 access-denied errors in the last %2 minutes.\n\
         Please review the server's audit trail.",
    ),
    (
        3006,
        "The error log is full. No errors will be logged until \
         the file is cleared or the limit is raised.",
    ),
    (3007, "The error log is 80% full."),
    (
        3008,
        "The audit log is full. No audit entries will be logged \
         until the file is cleared or the limit is raised.",
    ),
    (3009, "The audit log is 80% full."),
    (
        3010,
        "An error occurred closing file %1.\n\
         Please check the file to make sure it is not corrupted.",
    ),
    (3011, "The administrator has closed %1."),
    (
        3012,
        "There were %1 access-denied errors in the last %2 minutes.",
    ),
    (
        3020,
        "A power failure was detected at %1. The server has been paused.",
    ),
    (
        3021,
        "Power has been restored at %1. The server is no longer paused.",
    ),
    (
        3022,
        "The UPS service is starting shut down at %1 due to low battery.",
    ),
    (
        3023,
        "There is a problem with a configuration of user specified \
         shut down command file. The UPS service started anyway.",
    ),
    (
        3025,
        "A defective sector on drive %1 has been replaced (hotfixed). \
         No data was lost. You should run CHKDSK soon to restore full \
         performance and replenish the volume's spare sector pool.\n\
         The hotfix occurred while processing a remote request.",
    ),
    (
        3026,
        "A disk error occurred on the HPFS volume in drive %1.\n\
         The error occurred while processing a remote request.",
    ),
    (
        3027,
        "The user accounts database (NET.ACC) is corrupted. The local security \
         system is replacing the corrupted NET.ACC with the backup \
         made on %1 at %2.\n\
         Any updates made to the database after this time are lost.",
    ),
    (
        3028,
        "The user accounts database (NET.ACC) is missing. The local \
         security system is restoring the backup database \
         made on %1 at %2.\n\
         Any updates made to the database after this time are lost.",
    ),
    (
        3029,
        "Local security could not be started because the user accounts database \
         (NET.ACC) was missing or corrupted, and no usable backup \
         database was present.\n\
         THE SYSTEM IS NOT SECURE.",
    ),
    (
        3030,
        "The server cannot export directory %1, to client %2.\n\
         It is exported from another server.",
    ),
    (
        3031,
        "The replication server could not update directory %2 from the source \
         on %3 due to error %1.",
    ),
    (
        3032,
        "Master %1 did not send an update notice for directory %2 at the expected time.",
    ),
    (
        3033,
        "User %1 has exceeded account limitation %2 on server %3.",
    ),
    (3034, "The primary domain controller for domain %1 failed."),
    (
        3035,
        "Failed to authenticate with %2, a Windows NT or Windows 2000 Domain \
         Controller for domain %1.",
    ),
    (
        3036,
        "The replicator attempted to log on at %2 as %1 and failed.",
    ),
    (
        3038,
        "Replicator could not access %2 on %3 due to system error %1.",
    ),
    (
        3039,
        "Replicator limit for files in a directory has been exceeded.",
    ),
    (3040, "Replicator limit for tree depth has been exceeded."),
    (
        3041,
        "The replicator cannot update directory %1. It has tree integrity \
         and is the current directory for some process.",
    ),
    (3042, "Network error %1 occurred."),
    (3045, "System error %1 occurred."),
    (
        3046,
        "Cannot log on. User is currently logged on and argument TRYUSER \
         is set to NO.",
    ),
    (3047, "IMPORT path %1 cannot be found."),
    (3048, "EXPORT path %1 cannot be found."),
    (3049, "Replicated data has changed in directory %1."),
    (
        3050,
        "Replicator failed to update signal file in directory %2 due to \
         %1 system error.",
    ),
];

/// The NT alert text for `code` (3000–3050), with its `%1`..`%9` unmerged.
pub fn alert_text(code: u32) -> Option<&'static str> {
    ALERT_TEXTS
        .binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .map(|i| ALERT_TEXTS[i].1)
}

/// `template` with `%1`..`%9` replaced by the merge strings (an absent one
/// by nothing), in one pass: a `%1` inside a merge string stays as it is.
/// Any other `%` is kept.
pub fn merge(template: &str, strings: &[String]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        let digit = chars.peek().and_then(|d| d.to_digit(10)).filter(|&d| d > 0);
        match (c, digit) {
            ('%', Some(n)) => {
                chars.next();
                if let Some(string) = strings.get(n as usize - 1) {
                    out.push_str(string);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Fuzz entry: a `NetAlertRaise` buffer and each class's variable part must
/// parse without panicking, re-encode to something that parses to the same
/// value, and render within [`MAX_RENDERED_LEN`].
pub fn fuzz_alert(data: &[u8]) {
    if let Ok(alert) = RaisedAlert::parse(data) {
        let bytes = alert.to_bytes().expect("a parsed alert re-encodes");
        assert_eq!(RaisedAlert::parse(&bytes).expect("re-parse"), alert);
        assert!(alert.info.render().len() <= MAX_RENDERED_LEN);
    }
    for class in AlertClass::ALL {
        if let Ok(info) = AlertInfo::parse(class, data) {
            assert_eq!(info.class(), class);
            let bytes = info.to_bytes().expect("a parsed alert re-encodes");
            assert_eq!(AlertInfo::parse(class, &bytes).expect("re-parse"), info);
            assert!(info.render().len() <= MAX_RENDERED_LEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// UTF-16LE bytes of `text` with its NUL.
    fn wide(text: &str) -> Vec<u8> {
        text.encode_utf16()
            .chain(std::iter::once(0))
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    fn dwords(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn std_alert_is_two_hundred_bytes() {
        assert_eq!(STD_ALERT_LEN, 200);
        assert_eq!(MAX_VARIABLE_INFO_LEN, 312);
        let header = StdAlert {
            timestamp: 0x0102_0304,
            event_name: "ADMIN".into(),
            service_name: "DiskWatch".into(),
        };
        let mut bytes = Vec::new();
        header.write(&mut bytes).unwrap();
        assert_eq!(bytes.len(), STD_ALERT_LEN);
        assert_eq!(&bytes[..4], &[4, 3, 2, 1]);
        assert_eq!(&bytes[4..14], &wide("ADMIN")[..10]);
        assert_eq!(&bytes[38..40], &[b'D', 0]);
        assert_eq!(StdAlert::read(&mut Reader::new(&bytes)).unwrap(), header);
    }

    #[test]
    fn the_sdk_sample_parses_with_its_slack() {
        // NetAlertRaiseEx's SDK sample: errcode 2377, one string, in a
        // 255-byte array of which the rest is garbage.
        let mut bytes = dwords(&[2377, 1]);
        bytes.extend(wide("The log file is full."));
        bytes.resize(255, 0xCC);
        let info = AlertInfo::parse(AlertClass::Admin, &bytes).unwrap();
        assert_eq!(
            info,
            AlertInfo::Admin(MergeInfo {
                errcode: 2377,
                strings: vec!["The log file is full.".into()]
            })
        );
        assert_eq!(info.render(), "The log file is full.");
    }

    #[test]
    fn known_codes_render_the_nt_text() {
        let mut bytes = dwords(&[3000, 2]);
        bytes.extend(wide("C:"));
        bytes.extend(wide("1024"));
        let info = AlertInfo::parse(AlertClass::Admin, &bytes).unwrap();
        assert_eq!(
            info.render(),
            "Drive C: is nearly full. 1024 bytes are available.\n\
             Please warn users and delete unneeded files."
        );
        let user = AlertInfo::User(MergeInfo {
            errcode: 3033,
            strings: vec!["alice".into(), "logon hours".into(), "HOST1".into()],
        });
        assert_eq!(
            user.render(),
            "User alice has exceeded account limitation logon hours on server HOST1."
        );
        let log = AlertInfo::ErrorLog(ErrorLogInfo {
            errcode: 3006,
            offset: 0,
        });
        assert!(log.render().starts_with("The error log is full."));
        let other = AlertInfo::ErrorLog(ErrorLogInfo {
            errcode: 2273,
            offset: 96,
        });
        assert_eq!(
            other.render(),
            "Error 2273: The message alias could not be found on the network. \
             (error log entry at offset 96.)"
        );
        let bare = AlertInfo::Admin(MergeInfo {
            errcode: u32::MAX,
            strings: vec![],
        });
        assert_eq!(bare.render(), "Alert 4294967295.");
    }

    #[test]
    fn merge_is_one_pass() {
        let strings = ["%2".to_owned(), "x".to_owned()];
        assert_eq!(
            merge("a %1 b %2 c %3 d %0 e 80% f%", &strings),
            "a %2 b x c  d %0 e 80% f%"
        );
        assert_eq!(alert_text(3007), Some("The error log is 80% full."));
        assert_eq!(alert_text(3005), None);
        assert_eq!(alert_text(3051), None);
        assert!(ALERT_TEXTS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ALERT_TEXTS.iter().all(|&(c, _)| (3000..=3050).contains(&c)));
    }

    #[test]
    fn print_jobs_render_their_strings_and_status() {
        let mut bytes = dwords(&[12, 0x3 | 0x4, 1_700_000_000, 4096]);
        for s in ["HOST2", "alice", "LASER", "lp0", ""] {
            bytes.extend(wide(s));
        }
        let info = AlertInfo::parse(AlertClass::Printing, &bytes).unwrap();
        assert_eq!(
            info.render(),
            "Print job 12 (4096 bytes) for alice on HOST2, queue LASER on lp0: printing, complete"
        );
        assert_eq!(info.to_bytes().unwrap(), bytes);
        // Four strings: the fifth is missing.
        let cut = bytes.len() - 2;
        assert_eq!(
            AlertInfo::parse(AlertClass::Printing, &bytes[..cut]),
            Err(DecodeError::Truncated {
                field: "print status"
            })
        );
    }

    #[test]
    fn malformed_buffers_are_refused() {
        // Ten merge strings.
        let bytes = dwords(&[3000, 10]);
        assert!(matches!(
            AlertInfo::parse(AlertClass::Admin, &bytes),
            Err(DecodeError::TooLong { .. })
        ));
        // A string without its NUL, and an odd byte.
        let mut bytes = dwords(&[3000, 1]);
        bytes.extend(b"C\0:");
        assert!(matches!(
            AlertInfo::parse(AlertClass::Admin, &bytes),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(AlertInfo::parse(AlertClass::ErrorLog, &[0; 7]).is_err());
        let big = vec![0; MAX_VARIABLE_INFO_LEN + 1];
        assert!(AlertInfo::parse(AlertClass::ErrorLog, &big).is_err());
        // An event name filling its array without a NUL.
        let mut bytes = dwords(&[0]);
        bytes.extend(std::iter::repeat_n([b'A', 0], EVLEN + 1).flatten());
        bytes.resize(STD_ALERT_LEN + 8, 0);
        assert!(matches!(
            RaisedAlert::parse(&bytes),
            Err(DecodeError::Malformed {
                field: "alrt_eventname",
                ..
            })
        ));
        // A class without a variable part netsend reads.
        let header = StdAlert {
            timestamp: 0,
            event_name: "BACKUP".into(),
            service_name: "x".into(),
        };
        let mut bytes = Vec::new();
        header.write(&mut bytes).unwrap();
        bytes.extend(dwords(&[0, 0]));
        assert!(RaisedAlert::parse(&bytes).is_err());
        assert_eq!(
            AlertClass::from_event_name("printing"),
            Some(AlertClass::Printing)
        );
        assert_eq!(
            AlertClass::from_event_name("Message"),
            Some(AlertClass::Message)
        );
        assert_eq!(AlertClass::from_event_name("BACKUP"), None);
    }

    fn merge_info() -> impl Strategy<Value = MergeInfo> {
        (
            any::<u32>(),
            proptest::collection::vec("[^\u{0}]{0,12}", 0..=MAX_MERGE_STRINGS),
        )
            .prop_map(|(errcode, strings)| MergeInfo { errcode, strings })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            fuzz_alert(&data);
        }

        #[test]
        fn merge_alerts_round_trip(info in merge_info(), code in 2990u32..3060, admin in any::<bool>()) {
            let info = MergeInfo { errcode: if code % 2 == 0 { code } else { info.errcode }, ..info };
            let alert = if admin { AlertInfo::Admin(info) } else { AlertInfo::User(info) };
            if let Ok(bytes) = alert.to_bytes() {
                prop_assert_eq!(AlertInfo::parse(alert.class(), &bytes).unwrap(), alert.clone());
                prop_assert!(alert.render().len() <= MAX_RENDERED_LEN);
            }
        }

        #[test]
        fn whole_buffers_round_trip(info in merge_info(), timestamp in any::<u32>(),
                                    service in "[A-Za-z0-9 ]{1,80}") {
            let alert = RaisedAlert {
                header: StdAlert { timestamp, event_name: "ADMIN".into(), service_name: service },
                info: AlertInfo::Admin(info),
            };
            if let Ok(bytes) = alert.to_bytes() {
                prop_assert!(bytes.len() <= MAX_ALERT_LEN);
                prop_assert_eq!(RaisedAlert::parse(&bytes).unwrap(), alert);
            }
        }

        #[test]
        fn renders_stay_bounded(strings in proptest::collection::vec("\\PC{0,40}", 0..=MAX_MERGE_STRINGS)) {
            // The longest text and the largest strings a buffer can carry.
            for &(code, _) in ALERT_TEXTS {
                let alert = AlertInfo::Admin(MergeInfo { errcode: code, strings: strings.clone() });
                if alert.to_bytes().is_ok() {
                    prop_assert!(alert.render().len() <= MAX_RENDERED_LEN);
                }
            }
        }
    }
}
