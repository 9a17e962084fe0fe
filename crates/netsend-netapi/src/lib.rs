//! `libnetapi32`: the messenger functions of Windows' netapi32
//! (`NetMessageBufferSend`, `NetMessageNameAdd`/`Del`/`Enum`/`GetInfo`,
//! `NetApiBufferFree`) and the Alerter's `NetAlertRaise`/`NetAlertRaiseEx`
//! as a C ABI, so programs written against netapi32 run on Linux unchanged.
//! `include/lmmsg.h` and `include/lmalert.h` declare them.
//!
//! Each call goes to the local netsend service over its control socket
//! (`$NETSEND_CONTROL_SOCKET`, else `control_socket` from `$NETSEND_CONFIG` or
//! `/etc/netsend/netsend.toml`, else `/run/netsend/control.sock`); the service
//! knows the caller from the socket's peer credentials and applies its
//! permissions. A `servername` other than NULL, empty or this host's computer
//! name runs the call on that host's service over the remote-call channel
//! (`netsend_control::remote`), allowed only to its administrators.
//!
//! Strings are UTF-16 as `uint16_t` units, because `wchar_t` is 32 bits wide on
//! Linux. Every function checks its pointers for NULL and catches panics
//! (`NERR_InternalError`), so none can crash its caller.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::c_void;
use std::panic::{catch_unwind, UnwindSafe};

use netsend_control::{Request, Response};
use netsend_wire::status::NetApiStatus;

pub use crate::alert::{NetAlertRaise, NetAlertRaiseEx};
use crate::info::InfoLevel;
use crate::wide::{message_text, optional_name, required_name, server_name};

mod alert;
mod info;
mod local;
mod server;
mod wide;

/// Runs an export's body: its status either way, `NERR_InternalError` if it
/// panicked.
fn guard(body: impl FnOnce() -> Result<NetApiStatus, NetApiStatus> + UnwindSafe) -> u32 {
    match catch_unwind(body) {
        Ok(Ok(status) | Err(status)) => status.0,
        Err(_) => NetApiStatus::NERR_INTERNAL_ERROR.0,
    }
}

/// Success for a request the service answers with [`Response::Ok`].
fn expect_ok(response: Response) -> Result<NetApiStatus, NetApiStatus> {
    match response {
        Response::Ok => Ok(NetApiStatus::NERR_SUCCESS),
        _ => Err(NetApiStatus::NERR_INTERNAL_ERROR),
    }
}

/// Sends `buflen` bytes of UTF-16LE text at `buf` to the message alias
/// `msgname`, from `fromname` (NULL or empty: the calling user's name; only
/// root may claim another). Trailing NULs in the buffer are dropped.
///
/// Returns `NERR_Success`, `ERROR_INVALID_PARAMETER` (NULL or empty `msgname`,
/// a name over 15 characters, an odd `buflen`, NULL `buf` with a non-zero
/// `buflen`, a text longer than the service accepts), `NERR_NameNotFound`,
/// `NERR_NetworkError`, `NERR_MsgNotStarted`, `ERROR_NOT_SUPPORTED` (not run by the
/// server) or another code from the service.
///
/// # Safety
/// `servername`, `msgname` and `fromname` are NULL or NUL-terminated UTF-16;
/// `buf` is NULL or points to at least `buflen` readable bytes (a length beyond
/// the buffer cannot be detected).
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn NetMessageBufferSend(
    servername: *const u16,
    msgname: *const u16,
    fromname: *const u16,
    buf: *const u8,
    buflen: u32,
) -> u32 {
    guard(|| {
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let to = unsafe { required_name(msgname) }?;
        // SAFETY: as above.
        let from = unsafe { optional_name(fromname) }?;
        // SAFETY: the caller passes NULL or `buflen` readable bytes.
        let text = unsafe { message_text(buf, buflen) }?;
        // SAFETY: as above.
        let server = unsafe { server_name(servername) }?;
        match local::server(server.as_deref())?.call(&Request::Send { to, from, text })? {
            Response::Sent(_) => Ok(NetApiStatus::NERR_SUCCESS),
            _ => Err(NetApiStatus::NERR_INTERNAL_ERROR),
        }
    })
}

/// Adds the message alias `msgname`, owned by the calling user, and registers
/// it on the network.
///
/// Returns `NERR_Success`, `ERROR_INVALID_PARAMETER`, `NERR_AlreadyExists`,
/// `NERR_DuplicateName` (another host owns it), `NERR_TooManyNames`,
/// `NERR_MsgNotStarted`, `ERROR_NOT_SUPPORTED` (not run by the server) or another
/// code from the service.
///
/// # Safety
/// `servername` and `msgname` are NULL or NUL-terminated UTF-16.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn NetMessageNameAdd(servername: *const u16, msgname: *const u16) -> u32 {
    guard(|| {
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let name = unsafe { required_name(msgname) }?;
        // SAFETY: as above.
        let server = unsafe { server_name(servername) }?;
        expect_ok(local::server(server.as_deref())?.call(&Request::NameAdd { name })?)
    })
}

/// Deletes the message alias `msgname`. Only root deletes aliases other users
/// own; the computer name is never deleted.
///
/// Returns `NERR_Success`, `ERROR_INVALID_PARAMETER`, `NERR_NotLocalName`,
/// `NERR_DelComputerName`, `ERROR_ACCESS_DENIED`, `NERR_MsgNotStarted`,
/// `ERROR_NOT_SUPPORTED` (not run by the server) or another code from the service.
///
/// # Safety
/// `servername` and `msgname` are NULL or NUL-terminated UTF-16.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn NetMessageNameDel(servername: *const u16, msgname: *const u16) -> u32 {
    guard(|| {
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let name = unsafe { required_name(msgname) }?;
        // SAFETY: as above.
        let server = unsafe { server_name(servername) }?;
        expect_ok(local::server(server.as_deref())?.call(&Request::NameDel { name })?)
    })
}

/// Lists the message aliases at `level` 0 (`MSG_INFO_0`) or 1 (`MSG_INFO_1`)
/// into one buffer at `*bufptr`, to be freed with [`NetApiBufferFree`].
///
/// `prefmaxlen` bounds the buffer (`MAX_PREFERRED_LENGTH`: no bound; at least
/// one entry is always returned). `*entriesread` receives the entries in the
/// buffer and `*totalentries` those left from the resume position.
/// `resume_handle` (may be NULL) is 0 on the first call; when entries remain
/// the result is `ERROR_MORE_DATA` and `*resume_handle` is where the next call
/// continues, else it is set to 0.
///
/// Returns `NERR_Success`, `ERROR_MORE_DATA`, `ERROR_INVALID_LEVEL`,
/// `ERROR_INVALID_PARAMETER` (NULL `bufptr`, `entriesread` or
/// `totalentries`), `ERROR_NOT_ENOUGH_MEMORY`, `NERR_MsgNotStarted`, or
/// `ERROR_NOT_SUPPORTED` (not run by the server).
///
/// # Safety
/// `servername` is NULL or NUL-terminated UTF-16; `bufptr`, `entriesread`,
/// `totalentries` and `resume_handle` are NULL or valid for reads and writes.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn NetMessageNameEnum(
    servername: *const u16,
    level: u32,
    bufptr: *mut *mut u8,
    prefmaxlen: u32,
    entriesread: *mut u32,
    totalentries: *mut u32,
    resume_handle: *mut u32,
) -> u32 {
    guard(|| {
        // SAFETY: the caller passes NULL or writable locations.
        let page =
            unsafe { Page::cleared(bufptr, prefmaxlen, entriesread, totalentries, resume_handle) }?;
        let level = InfoLevel::try_from(level)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let server = unsafe { server_name(servername) }?;
        let names = local::server(server.as_deref())?.alias_names()?;
        // SAFETY: checked by Page::cleared; the caller passes writable
        // locations, and NULL or a readable and writable resume handle.
        unsafe { page.fill(level, &names) }
    })
}

/// Describes the message alias `msgname` at `level` 0 (`MSG_INFO_0`) or 1
/// (`MSG_INFO_1`) in a buffer at `*bufptr`, to be freed with
/// [`NetApiBufferFree`]. Names compare case-insensitively.
///
/// Returns `NERR_Success`, `ERROR_INVALID_LEVEL`, `ERROR_INVALID_PARAMETER`,
/// `NERR_NotLocalName` (no such alias here), `ERROR_NOT_ENOUGH_MEMORY`,
/// `NERR_MsgNotStarted`, or `ERROR_NOT_SUPPORTED` (not run by the server).
///
/// # Safety
/// `servername` and `msgname` are NULL or NUL-terminated UTF-16; `bufptr` is
/// NULL or valid for writes.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn NetMessageNameGetInfo(
    servername: *const u16,
    msgname: *const u16,
    level: u32,
    bufptr: *mut *mut u8,
) -> u32 {
    guard(|| {
        if bufptr.is_null() {
            return Err(NetApiStatus::ERROR_INVALID_PARAMETER);
        }
        // SAFETY: not NULL, and the caller passes a writable location.
        unsafe { bufptr.write(std::ptr::null_mut()) };
        let level = InfoLevel::try_from(level)?;
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let wanted = unsafe { required_name(msgname) }?.to_uppercase();
        // SAFETY: as above.
        let server = unsafe { server_name(servername) }?;
        let names = local::server(server.as_deref())?.alias_names()?;
        let name = names
            .into_iter()
            .find(|name| name.to_uppercase() == wanted)
            .ok_or(NetApiStatus::NERR_NOT_LOCAL_NAME)?;
        let buffer = level.buffer(&[name])?;
        // SAFETY: not NULL (checked above), and the caller passes a writable
        // location.
        unsafe { bufptr.write(buffer) };
        Ok(NetApiStatus::NERR_SUCCESS)
    })
}

/// Lists the hosts of the browse list (what `netsend view` shows) at
/// `level` 100 (`SERVER_INFO_100`) or 101 (`SERVER_INFO_101`) in a buffer at
/// `*bufptr`, to be freed with [`NetApiBufferFree`]: those of `domain` (NULL
/// or empty: our workgroup) whose `SV_TYPE_*` bits share one with
/// `servertype` (`SV_TYPE_ALL`: all); with `SV_TYPE_DOMAIN_ENUM` in
/// `servertype`, the workgroups heard instead (`sv101_comment`: the master
/// browser). As on Windows, entries that do not fit `prefmaxlen` bytes
/// (`MAX_PREFERRED_LENGTH`: no bound) are left out with `ERROR_MORE_DATA`,
/// `*totalentries` counting them; at least one is returned. Windows reserves
/// `resume_handle` (NULL or 0); here a non-zero handle from a previous call
/// continues the enumeration where it stopped, and is set to 0 at the end.
///
/// Returns `NERR_Success`, `ERROR_MORE_DATA`, `ERROR_INVALID_LEVEL`,
/// `ERROR_INVALID_PARAMETER`, `ERROR_NOT_ENOUGH_MEMORY`, `NERR_MsgNotStarted`,
/// or `ERROR_NOT_SUPPORTED` (`servername` names another host).
///
/// # Safety
/// `servername` and `domain` are NULL or NUL-terminated UTF-16; `bufptr`,
/// `entriesread`, `totalentries` and `resume_handle` are NULL or valid for
/// reads and writes.
#[no_mangle]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub unsafe extern "C" fn NetServerEnum(
    servername: *const u16,
    level: u32,
    bufptr: *mut *mut u8,
    prefmaxlen: u32,
    entriesread: *mut u32,
    totalentries: *mut u32,
    servertype: u32,
    domain: *const u16,
    resume_handle: *mut u32,
) -> u32 {
    guard(|| {
        // SAFETY: the caller passes NULL or writable locations.
        let page =
            unsafe { Page::cleared(bufptr, prefmaxlen, entriesread, totalentries, resume_handle) }?;
        let level = server::ServerLevel::try_from(level)?;
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let server = unsafe { server_name(servername) }?;
        // SAFETY: as above.
        let domain = unsafe { optional_name(domain) }?;
        let service = local::server(server.as_deref())?;
        if matches!(service, local::LocalService::There { .. }) {
            return Err(NetApiStatus::ERROR_NOT_SUPPORTED);
        }
        let servers = server::servers(&service, servertype, domain)?;
        // SAFETY: checked by Page::cleared; the caller passes writable
        // locations, and NULL or a readable and writable resume handle.
        unsafe { page.fill(level, &servers) }
    })
}

/// An information level of an enumeration: how many entries fit a
/// caller's `prefmaxlen`, and the buffer that carries them.
trait Level<T>: Copy {
    /// How many of `items` to return within `prefmaxlen` bytes (at least one).
    fn entries_within(self, items: &[T], prefmaxlen: u32) -> usize;
    /// The buffer for `items`, freed with [`NetApiBufferFree`].
    fn buffer(self, items: &[T]) -> Result<*mut u8, NetApiStatus>;
}

impl Level<String> for InfoLevel {
    fn entries_within(self, items: &[String], prefmaxlen: u32) -> usize {
        Self::entries_within(self, items, prefmaxlen)
    }
    fn buffer(self, items: &[String]) -> Result<*mut u8, NetApiStatus> {
        Self::buffer(self, items)
    }
}

impl Level<server::Server> for server::ServerLevel {
    fn entries_within(self, items: &[server::Server], prefmaxlen: u32) -> usize {
        Self::entries_within(self, items, prefmaxlen)
    }
    fn buffer(self, items: &[server::Server]) -> Result<*mut u8, NetApiStatus> {
        Self::buffer(self, items)
    }
}

/// The output arguments of an enumeration (`NetMessageNameEnum`,
/// `NetServerEnum`).
struct Page {
    bufptr: *mut *mut u8,
    prefmaxlen: u32,
    entriesread: *mut u32,
    totalentries: *mut u32,
    resume_handle: *mut u32,
}

impl Page {
    /// The output arguments, with `*bufptr` set to NULL and the counts to 0;
    /// `ERROR_INVALID_PARAMETER` if `bufptr`, `entriesread` or
    /// `totalentries` is NULL.
    ///
    /// # Safety
    /// Each pointer is NULL or valid for writes.
    unsafe fn cleared(
        bufptr: *mut *mut u8,
        prefmaxlen: u32,
        entriesread: *mut u32,
        totalentries: *mut u32,
        resume_handle: *mut u32,
    ) -> Result<Self, NetApiStatus> {
        if bufptr.is_null() || entriesread.is_null() || totalentries.is_null() {
            return Err(NetApiStatus::ERROR_INVALID_PARAMETER);
        }
        // SAFETY: not NULL, and the caller passes writable locations.
        unsafe {
            bufptr.write(std::ptr::null_mut());
            entriesread.write(0);
            totalentries.write(0);
        }
        Ok(Self {
            bufptr,
            prefmaxlen,
            entriesread,
            totalentries,
            resume_handle,
        })
    }

    /// Returns the page of `items` that starts at `*resume_handle` (NULL:
    /// at the start) and fits `prefmaxlen`: the buffer, the counts (what is
    /// left from the start on), the next handle (0 at the end), and
    /// `ERROR_MORE_DATA` while entries are left.
    ///
    /// # Safety
    /// `bufptr`, `entriesread` and `totalentries` are valid for writes;
    /// `resume_handle` is NULL or valid for reads and writes.
    unsafe fn fill<T, L: Level<T>>(
        &self,
        level: L,
        items: &[T],
    ) -> Result<NetApiStatus, NetApiStatus> {
        let start = if self.resume_handle.is_null() {
            0
        } else {
            // SAFETY: not NULL, and the caller passes a readable location.
            let handle = unsafe { self.resume_handle.read() };
            usize::try_from(handle).map_or(items.len(), |h| h.min(items.len()))
        };
        let remaining = &items[start..];
        let count = level.entries_within(remaining, self.prefmaxlen);
        let buffer = level.buffer(&remaining[..count])?;
        let more = count < remaining.len();
        let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        // SAFETY: forwarded from the caller.
        unsafe {
            self.bufptr.write(buffer);
            self.entriesread.write(as_u32(count));
            self.totalentries.write(as_u32(remaining.len()));
            if !self.resume_handle.is_null() {
                self.resume_handle
                    .write(if more { as_u32(start + count) } else { 0 });
            }
        }
        Ok(if more {
            NetApiStatus::ERROR_MORE_DATA
        } else {
            NetApiStatus::NERR_SUCCESS
        })
    }
}

/// Frees a buffer returned by [`NetMessageNameEnum`], [`NetServerEnum`] or
/// [`NetMessageNameGetInfo`]. NULL is accepted and ignored. Returns
/// `NERR_Success`.
///
/// # Safety
/// `buffer` is NULL or a buffer this library returned and not yet freed.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn NetApiBufferFree(buffer: *mut c_void) -> u32 {
    guard(|| {
        // SAFETY: the caller passes NULL or a buffer from this library.
        unsafe { info::free(buffer.cast()) };
        Ok(NetApiStatus::NERR_SUCCESS)
    })
}
