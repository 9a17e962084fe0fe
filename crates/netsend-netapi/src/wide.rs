//! UTF-16 strings and message buffers as C callers pass them.
//!
//! `wchar_t` is 32 bits wide on Linux, so the API takes UTF-16 as `uint16_t`
//! units (`WCHAR` in `lmmsg.h`): NUL-terminated for names, and a byte buffer of
//! UTF-16LE with its length in bytes for the message text, as on Windows.

use netsend_control::protocol::MAX_MESSAGE_LEN;
use netsend_wire::status::NetApiStatus;

/// Longest message alias or sender name, in UTF-16 code units (a NetBIOS name
/// holds 15 characters).
pub(crate) const MAX_NAME_LEN: usize = 15;

/// Longest server name read, in UTF-16 code units: `\\` and a DNS name.
pub(crate) const MAX_SERVER_NAME_LEN: usize = 2 + 255;

/// Largest `buflen` accepted, in bytes: every UTF-16 unit is at least one byte
/// of the service's UTF-8 text, so anything longer exceeds the largest
/// `limits.max_message_len` a service can be configured with (the service
/// checks its own limit and answers `ERROR_INVALID_PARAMETER` beyond it).
pub(crate) const MAX_BUFLEN: usize = 2 * MAX_MESSAGE_LEN;

const INVALID: NetApiStatus = NetApiStatus::ERROR_INVALID_PARAMETER;

/// Reads the NUL-terminated UTF-16 string at `ptr` (`None` for NULL). More than
/// `max` code units before the NUL, or invalid UTF-16, is
/// `ERROR_INVALID_PARAMETER`.
///
/// # Safety
/// `ptr` is NULL or points to readable `u16`s up to and including a NUL, or up
/// to at least `max + 1` units. It need not be aligned.
pub(crate) unsafe fn read_wide(
    ptr: *const u16,
    max: usize,
) -> Result<Option<String>, NetApiStatus> {
    if ptr.is_null() {
        return Ok(None);
    }
    let mut units = Vec::new();
    loop {
        // SAFETY: units.len() <= max, and the caller guarantees the string is
        // readable up to its NUL or to max + 1 units, whichever comes first.
        let unit = unsafe { ptr.add(units.len()).read_unaligned() };
        if unit == 0 {
            break;
        }
        if units.len() == max {
            return Err(INVALID);
        }
        units.push(unit);
    }
    String::from_utf16(&units).map(Some).map_err(|_| INVALID)
}

/// A name argument that must be given: 1 to [`MAX_NAME_LEN`] code units.
///
/// # Safety
/// As for [`read_wide`] with `max` = [`MAX_NAME_LEN`].
pub(crate) unsafe fn required_name(ptr: *const u16) -> Result<String, NetApiStatus> {
    // SAFETY: forwarded from the caller.
    match unsafe { read_wide(ptr, MAX_NAME_LEN) }? {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(INVALID),
    }
}

/// A name argument that may be NULL or empty (`None`), else at most
/// [`MAX_NAME_LEN`] code units.
///
/// # Safety
/// As for [`read_wide`] with `max` = [`MAX_NAME_LEN`].
pub(crate) unsafe fn optional_name(ptr: *const u16) -> Result<Option<String>, NetApiStatus> {
    // SAFETY: forwarded from the caller.
    let name = unsafe { read_wide(ptr, MAX_NAME_LEN) }?;
    Ok(name.filter(|n| !n.is_empty()))
}

/// The server name argument without its leading `\\`; `None` when NULL or
/// empty.
///
/// # Safety
/// As for [`read_wide`] with `max` = [`MAX_SERVER_NAME_LEN`].
pub(crate) unsafe fn server_name(ptr: *const u16) -> Result<Option<String>, NetApiStatus> {
    // SAFETY: forwarded from the caller.
    let name = unsafe { read_wide(ptr, MAX_SERVER_NAME_LEN) }?;
    Ok(name
        .map(|n| n.strip_prefix(r"\\").map(str::to_owned).unwrap_or(n))
        .filter(|n| !n.is_empty()))
}

/// The message text from `buf`: `buflen` bytes of UTF-16LE.
///
/// # Safety
/// `buf` is NULL (then `buflen` must be 0) or points to at least `buflen`
/// readable bytes.
pub(crate) unsafe fn message_text(buf: *const u8, buflen: u32) -> Result<String, NetApiStatus> {
    // SAFETY: forwarded from the caller.
    decode_message(unsafe { byte_buffer(buf, buflen, MAX_BUFLEN) }?)
}

/// The `len` bytes at `ptr`: `ERROR_INVALID_PARAMETER` beyond `max`, or when
/// `ptr` is NULL and `len` is not 0.
///
/// # Safety
/// `ptr` is NULL or points to at least `len` readable bytes that outlive `'a`.
pub(crate) unsafe fn byte_buffer<'a>(
    ptr: *const u8,
    len: u32,
    max: usize,
) -> Result<&'a [u8], NetApiStatus> {
    let len = usize::try_from(len).map_err(|_| INVALID)?;
    if len > max {
        return Err(INVALID);
    }
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(INVALID);
    }
    // SAFETY: not NULL, and the caller guarantees `len` readable bytes; u8
    // has no alignment requirement.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Decodes a UTF-16LE message buffer. An odd length is
/// `ERROR_INVALID_PARAMETER`; trailing NULs (a caller counting the terminator)
/// are dropped, and unpaired surrogates become U+FFFD, as Windows turns
/// unconvertible characters into a default character.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<String, NetApiStatus> {
    if bytes.len() % 2 != 0 {
        return Err(INVALID);
    }
    let mut units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    while units.last() == Some(&0) {
        units.pop();
    }
    Ok(String::from_utf16_lossy(&units))
}

/// `text` as NUL-terminated UTF-16.
pub(crate) fn to_wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_required() {
        let ok = to_wide("helpdesk");
        let fifteen = to_wide("ABCDEFGHIJKLMNO");
        let sixteen = to_wide("ABCDEFGHIJKLMNOP");
        // SAFETY: every pointer is NULL or a NUL-terminated Vec<u16>.
        unsafe {
            assert_eq!(required_name(ok.as_ptr()), Ok("helpdesk".into()));
            assert_eq!(
                required_name(fifteen.as_ptr()),
                Ok("ABCDEFGHIJKLMNO".into())
            );
            assert_eq!(required_name(sixteen.as_ptr()), Err(INVALID));
            assert_eq!(required_name(std::ptr::null()), Err(INVALID));
            assert_eq!(required_name(to_wide("").as_ptr()), Err(INVALID));
            assert_eq!(optional_name(std::ptr::null()), Ok(None));
            assert_eq!(optional_name(to_wide("").as_ptr()), Ok(None));
            assert_eq!(optional_name(sixteen.as_ptr()), Err(INVALID));
            // A lone surrogate is no name.
            assert_eq!(required_name([0xD800, 0].as_ptr()), Err(INVALID));
        }
    }

    #[test]
    fn server_names_drop_the_backslashes() {
        // SAFETY: every pointer is NULL or a NUL-terminated Vec<u16>.
        unsafe {
            assert_eq!(server_name(std::ptr::null()), Ok(None));
            assert_eq!(server_name(to_wide("").as_ptr()), Ok(None));
            assert_eq!(server_name(to_wide(r"\\").as_ptr()), Ok(None));
            assert_eq!(
                server_name(to_wide(r"\\Host1").as_ptr()),
                Ok(Some("Host1".into()))
            );
            assert_eq!(
                server_name(to_wide("host1").as_ptr()),
                Ok(Some("host1".into()))
            );
            let long = to_wide(&"x".repeat(MAX_SERVER_NAME_LEN + 1));
            assert_eq!(server_name(long.as_ptr()), Err(INVALID));
        }
    }

    #[test]
    fn message_buffers_are_utf16le_bytes() {
        let text = "Grüße, € and 😀";
        let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(decode_message(&bytes), Ok(text.into()));
        // A caller that counts the terminator.
        let mut with_nul = bytes.clone();
        with_nul.extend([0, 0]);
        assert_eq!(decode_message(&with_nul), Ok(text.into()));
        assert_eq!(decode_message(&bytes[..bytes.len() - 1]), Err(INVALID));
        assert_eq!(decode_message(&[0x00, 0xD8]), Ok("\u{FFFD}".into()));
        // SAFETY: NULL with length 0, or a pointer to `bytes` with its length.
        unsafe {
            assert_eq!(message_text(std::ptr::null(), 0), Ok(String::new()));
            assert_eq!(message_text(std::ptr::null(), 2), Err(INVALID));
            assert_eq!(message_text(bytes.as_ptr(), 3), Err(INVALID));
            assert_eq!(
                message_text(bytes.as_ptr(), bytes.len() as u32),
                Ok(text.into())
            );
        }
        let huge = vec![b'a'; MAX_BUFLEN + 2];
        // SAFETY: `huge` holds MAX_BUFLEN + 2 bytes.
        let refused = unsafe { message_text(huge.as_ptr(), huge.len() as u32) };
        assert_eq!(refused, Err(INVALID));
    }
}
