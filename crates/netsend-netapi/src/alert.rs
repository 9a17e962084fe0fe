//! `NetAlertRaise` and `NetAlertRaiseEx` (`include/lmalert.h`): a program's
//! alert, read and rendered here (the NT texts 3000–3050 with their merge
//! strings, or the alert's own strings, by `netsend_wire::alert`), raised on
//! the local service's Alerter, which sends it to every `[alerter] names`
//! entry.
//!
//! Every argument is checked before the service is asked, so a malformed call
//! fails with `ERROR_INVALID_PARAMETER` whether or not a service runs.

use netsend_control::types::{AlertClass, AlertReport, AlertRequest};
use netsend_control::{Request, Response};
use netsend_wire::alert::{
    self, AlertInfo, RaisedAlert, EVLEN, MAX_ALERT_LEN, MAX_VARIABLE_INFO_LEN, SNLEN, STD_ALERT_LEN,
};
use netsend_wire::status::NetApiStatus;

use crate::wide::{byte_buffer, read_wide};
use crate::{guard, local};

const INVALID: NetApiStatus = NetApiStatus::ERROR_INVALID_PARAMETER;
/// `ERROR_FILE_NOT_FOUND` (2): what Windows returns when the Alerter is not
/// running (its mailslot does not exist); here, no service on the socket.
const ERROR_FILE_NOT_FOUND: NetApiStatus = NetApiStatus(2);

/// The alert class argument: one of `lmalert.h`'s `ALERT_*_EVENT` names, in
/// any case. NULL, empty, over [`EVLEN`] characters or a user-defined class is
/// `ERROR_INVALID_PARAMETER`.
///
/// # Safety
/// As for [`read_wide`] with `max` = [`EVLEN`].
unsafe fn alert_class(ptr: *const u16) -> Result<alert::AlertClass, NetApiStatus> {
    // SAFETY: forwarded from the caller.
    let name = unsafe { read_wide(ptr, EVLEN) }?.ok_or(INVALID)?;
    alert::AlertClass::from_event_name(&name).ok_or(INVALID)
}

/// A service name: 1 to [`SNLEN`] characters.
fn check_service(name: Option<String>) -> Result<String, NetApiStatus> {
    name.filter(|n| !n.is_empty()).ok_or(INVALID)
}

/// The control contract's class for a wire class (MESSAGE is NAME).
const fn control_class(class: alert::AlertClass) -> AlertClass {
    match class {
        alert::AlertClass::Admin => AlertClass::Admin,
        alert::AlertClass::User => AlertClass::User,
        alert::AlertClass::Printing => AlertClass::Printing,
        alert::AlertClass::ErrorLog => AlertClass::Errorlog,
        alert::AlertClass::Message => AlertClass::Name,
    }
}

/// The request for an alert raised by `service`: rendered here, sent with
/// the calling program's name.
fn request(info: &AlertInfo, service: String) -> Request {
    let program = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()));
    Request::Alert(AlertRequest {
        class: control_class(info.class()),
        service,
        text: info.render(),
        program,
    })
}

/// Raises the alert on the local service.
fn raise(info: &AlertInfo, service: String) -> Result<NetApiStatus, NetApiStatus> {
    let answer =
        local::server(None)?
            .call(&request(info, service))
            .map_err(|status| match status {
                NetApiStatus::NERR_MSG_NOT_STARTED => ERROR_FILE_NOT_FOUND,
                other => other,
            })?;
    match answer {
        Response::Alert(report) => report_status(&report),
        _ => Err(NetApiStatus::NERR_INTERNAL_ERROR),
    }
}

/// The status for the Alerter's report: success when any alert name got the
/// alert or it waits in the queue for one, or it was batched or capped (the
/// Alerter has taken it, as NT's did); when every name failed, the first
/// failure's code.
fn report_status(report: &AlertReport) -> Result<NetApiStatus, NetApiStatus> {
    let taken = report.held.is_some() || !report.delivered.is_empty() || !report.queued.is_empty();
    match report.failed.first() {
        Some(failure) if !taken => Err(NetApiStatus(failure.code)),
        _ => Ok(NetApiStatus::NERR_SUCCESS),
    }
}

/// Raises an alert from a buffer that starts with `STD_ALERT`, followed by
/// the variable part of `AlertType`'s class (`ALERT_OTHER_INFO(Buffer)`).
/// The header's `alrt_eventname` must name the same class and its
/// `alrt_servicename` must not be empty; its time stamp is not used (the
/// service dates the alert).
///
/// Returns `NERR_Success`, `ERROR_INVALID_PARAMETER` (NULL, empty, too long
/// or unknown `AlertType`; `BufferSize` below `sizeof(STD_ALERT)` or over 512;
/// NULL `Buffer`; a header or variable part that does not parse),
/// `ERROR_FILE_NOT_FOUND` (no service running), `NERR_ServiceNotInstalled`
/// (the Alerter is off), `ERROR_ACCESS_DENIED` (the caller may not raise
/// alerts), or the code of the failure when no alert name could be reached.
///
/// # Safety
/// `AlertType` is NULL or NUL-terminated UTF-16; `Buffer` is NULL or points
/// to at least `BufferSize` readable bytes.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn NetAlertRaise(
    AlertType: *const u16,
    Buffer: *const u8,
    BufferSize: u32,
) -> u32 {
    guard(|| {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let class = unsafe { alert_class(AlertType) }?;
        if usize::try_from(BufferSize).is_ok_and(|size| size < STD_ALERT_LEN) {
            return Err(INVALID);
        }
        // SAFETY: the caller passes NULL or `BufferSize` readable bytes.
        let bytes = unsafe { byte_buffer(Buffer, BufferSize, MAX_ALERT_LEN) }?;
        let alert = RaisedAlert::parse(bytes).map_err(|_| INVALID)?;
        if alert.info.class() != class {
            return Err(INVALID);
        }
        let service = check_service(Some(alert.header.service_name))?;
        raise(&alert.info, service)
    })
}

/// Raises an alert from the variable part of `AlertType`'s class alone
/// (`ADMIN_OTHER_INFO` and merge strings, `USER_OTHER_INFO`,
/// `PRINT_OTHER_INFO`, `ERRLOG_OTHER_INFO`; MESSAGE takes the ADMIN layout),
/// on behalf of `ServiceName`. Bytes after the strings the structure
/// announces are ignored.
///
/// Returns `NERR_Success`, `ERROR_INVALID_PARAMETER` (NULL, empty, too long
/// or unknown `AlertType`; NULL, empty or over 80 characters `ServiceName`;
/// `VariableInfoSize` over 512 − `sizeof(STD_ALERT)`; NULL `VariableInfo`
/// with a size; a variable part that does not parse), `ERROR_FILE_NOT_FOUND`
/// (no service running), `NERR_ServiceNotInstalled` (the Alerter is off),
/// `ERROR_ACCESS_DENIED` (the caller may not raise alerts), or the code of
/// the failure when no alert name could be reached.
///
/// # Safety
/// `AlertType` and `ServiceName` are NULL or NUL-terminated UTF-16;
/// `VariableInfo` is NULL or points to at least `VariableInfoSize` readable
/// bytes.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn NetAlertRaiseEx(
    AlertType: *const u16,
    VariableInfo: *const u8,
    VariableInfoSize: u32,
    ServiceName: *const u16,
) -> u32 {
    guard(|| {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let class = unsafe { alert_class(AlertType) }?;
        // SAFETY: as above.
        let service = check_service(unsafe { read_wide(ServiceName, SNLEN) }?)?;
        // SAFETY: the caller passes NULL or `VariableInfoSize` readable bytes.
        let bytes = unsafe { byte_buffer(VariableInfo, VariableInfoSize, MAX_VARIABLE_INFO_LEN) }?;
        let info = AlertInfo::parse(class, bytes).map_err(|_| INVALID)?;
        raise(&info, service)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wide::to_wide;
    use netsend_control::types::{AlertDelivery, AlertFailure, AlertHeld};
    use netsend_wire::alert::{MergeInfo, StdAlert};

    /// An ADMIN 3000 alert's variable part.
    fn disk_full() -> Vec<u8> {
        AlertInfo::Admin(MergeInfo {
            errcode: 3000,
            strings: vec!["/var".into(), "1024".into()],
        })
        .to_bytes()
        .unwrap()
    }

    /// Runs `f` with the control socket pointing where nothing listens, so a
    /// call that got past its checks answers `ERROR_FILE_NOT_FOUND`.
    fn without_service(f: impl FnOnce()) {
        let dir = std::env::temp_dir().join(format!("netapi-alert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("netsend.toml"), "").unwrap();
        std::env::set_var("NETSEND_CONTROL_SOCKET", dir.join("absent.sock"));
        std::env::set_var("NETSEND_CONFIG", dir.join("netsend.toml"));
        f();
    }

    #[test]
    fn raise_ex_checks_its_arguments_first() {
        let admin = to_wide("ADMIN");
        let service = to_wide("DiskWatch");
        let info = disk_full();
        let size = info.len() as u32;
        let long_service = to_wide(&"s".repeat(SNLEN + 1));
        let max_service = to_wide(&"s".repeat(SNLEN));
        let long_class = to_wide(&"A".repeat(EVLEN + 1));
        let mut ten = info.clone();
        ten[4] = 10;
        let big = vec![0u8; MAX_VARIABLE_INFO_LEN + 1];
        let null = std::ptr::null();
        let p = info.as_ptr();
        // SAFETY: every pointer is NULL, a NUL-terminated Vec<u16> or a Vec<u8>
        // with at least the length passed.
        without_service(|| unsafe {
            let invalid = INVALID.0;
            assert_eq!(NetAlertRaiseEx(null, p, size, service.as_ptr()), invalid);
            assert_eq!(
                NetAlertRaiseEx(to_wide("").as_ptr(), p, size, service.as_ptr()),
                invalid
            );
            assert_eq!(
                NetAlertRaiseEx(to_wide("BACKUP").as_ptr(), p, size, service.as_ptr()),
                invalid
            );
            assert_eq!(
                NetAlertRaiseEx(long_class.as_ptr(), p, size, service.as_ptr()),
                invalid
            );
            assert_eq!(NetAlertRaiseEx(admin.as_ptr(), p, size, null), invalid);
            assert_eq!(
                NetAlertRaiseEx(admin.as_ptr(), p, size, to_wide("").as_ptr()),
                invalid
            );
            assert_eq!(
                NetAlertRaiseEx(admin.as_ptr(), p, size, long_service.as_ptr()),
                invalid
            );
            assert_eq!(
                NetAlertRaiseEx(admin.as_ptr(), std::ptr::null(), size, service.as_ptr()),
                invalid
            );
            assert_eq!(
                NetAlertRaiseEx(admin.as_ptr(), p, 0, service.as_ptr()),
                invalid
            );
            assert_eq!(
                NetAlertRaiseEx(admin.as_ptr(), p, 7, service.as_ptr()),
                invalid
            );
            assert_eq!(
                NetAlertRaiseEx(admin.as_ptr(), ten.as_ptr(), size, service.as_ptr()),
                invalid
            );
            assert_eq!(
                NetAlertRaiseEx(
                    admin.as_ptr(),
                    big.as_ptr(),
                    big.len() as u32,
                    service.as_ptr()
                ),
                invalid
            );
            // Well formed, in any case of the class name, with the longest
            // service name: it reaches the (absent) service.
            let found = ERROR_FILE_NOT_FOUND.0;
            assert_eq!(
                NetAlertRaiseEx(admin.as_ptr(), p, size, service.as_ptr()),
                found
            );
            assert_eq!(
                NetAlertRaiseEx(to_wide("admin").as_ptr(), p, size, max_service.as_ptr()),
                found
            );
            let log = [0xBE, 0x0B, 0, 0, 0, 0, 0, 0];
            assert_eq!(
                NetAlertRaiseEx(
                    to_wide("ERRORLOG").as_ptr(),
                    log.as_ptr(),
                    8,
                    service.as_ptr()
                ),
                found
            );
        });
    }

    #[test]
    fn raise_checks_the_header() {
        let with_header = |event: &str, service: &str, info: &[u8]| {
            let mut bytes = Vec::new();
            StdAlert {
                timestamp: 0,
                event_name: event.into(),
                service_name: service.into(),
            }
            .write(&mut bytes)
            .unwrap();
            bytes.extend(info);
            bytes
        };
        let admin = to_wide("ADMIN");
        let good = with_header("ADMIN", "DiskWatch", &disk_full());
        let other = with_header("USER", "DiskWatch", &disk_full());
        let nameless = with_header("ADMIN", "", &disk_full());
        let len = |b: &[u8]| b.len() as u32;
        // SAFETY: every pointer is NULL, a NUL-terminated Vec<u16> or a Vec<u8>
        // with at least the length passed.
        without_service(|| unsafe {
            let invalid = INVALID.0;
            assert_eq!(
                NetAlertRaise(admin.as_ptr(), good.as_ptr(), STD_ALERT_LEN as u32 - 1),
                invalid
            );
            assert_eq!(
                NetAlertRaise(admin.as_ptr(), good.as_ptr(), STD_ALERT_LEN as u32),
                invalid
            );
            assert_eq!(
                NetAlertRaise(admin.as_ptr(), std::ptr::null(), len(&good)),
                invalid
            );
            assert_eq!(
                NetAlertRaise(admin.as_ptr(), other.as_ptr(), len(&other)),
                invalid
            );
            assert_eq!(
                NetAlertRaise(admin.as_ptr(), nameless.as_ptr(), len(&nameless)),
                invalid
            );
            let big = vec![0u8; MAX_ALERT_LEN + 1];
            assert_eq!(
                NetAlertRaise(admin.as_ptr(), big.as_ptr(), len(&big)),
                invalid
            );
            assert_eq!(
                NetAlertRaise(admin.as_ptr(), good.as_ptr(), len(&good)),
                ERROR_FILE_NOT_FOUND.0
            );
        });
    }

    #[test]
    fn the_request_carries_the_rendered_text() {
        let info = AlertInfo::parse(alert::AlertClass::Message, &disk_full()).unwrap();
        let Request::Alert(request) = request(&info, "DiskWatch".into()) else {
            panic!("not an alert request");
        };
        assert_eq!(request.class, AlertClass::Name);
        assert_eq!(request.service, "DiskWatch");
        assert!(
            request
                .text
                .starts_with("Drive /var is nearly full. 1024 bytes"),
            "{}",
            request.text
        );
        assert!(request.program.is_some());
    }

    #[test]
    fn a_report_is_success_unless_every_name_failed() {
        let failure = AlertFailure {
            name: "OPS".into(),
            code: 2273,
            detail: "not found".into(),
        };
        let failed = AlertReport {
            failed: vec![failure.clone()],
            ..AlertReport::default()
        };
        assert_eq!(
            report_status(&failed),
            Err(NetApiStatus::NERR_NAME_NOT_FOUND)
        );
        let partly = AlertReport {
            delivered: vec![AlertDelivery {
                name: "ALICE".into(),
                address: "192.0.2.2".into(),
            }],
            ..failed.clone()
        };
        assert_eq!(report_status(&partly), Ok(NetApiStatus::NERR_SUCCESS));
        let batched = AlertReport {
            held: Some(AlertHeld::Batched { count: 2 }),
            ..AlertReport::default()
        };
        assert_eq!(report_status(&batched), Ok(NetApiStatus::NERR_SUCCESS));
    }
}
