//! `MSG_INFO_0` and `MSG_INFO_1` and the buffers that carry them: one block
//! from `malloc`, the structure array followed by the strings it points to,
//! released with `NetApiBufferFree`.

use netsend_wire::status::NetApiStatus;

use crate::wide::to_wide;

/// `MSG_INFO_0`: a message alias.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct MsgInfo0 {
    /// `msgi0_name`: the alias, NUL-terminated UTF-16.
    pub(crate) msgi0_name: *mut u16,
}

/// `MSG_INFO_1`: a message alias and its forwarding, which no longer exists:
/// the flag is always 0 and the forward name NULL, as Windows documents.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct MsgInfo1 {
    /// `msgi1_name`: the alias, NUL-terminated UTF-16.
    pub(crate) msgi1_name: *mut u16,
    /// `msgi1_forward_flag`: always 0.
    pub(crate) msgi1_forward_flag: u32,
    /// `msgi1_forward`: always NULL.
    pub(crate) msgi1_forward: *mut u16,
}

/// The information levels `NetMessageNameEnum` and `NetMessageNameGetInfo`
/// support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InfoLevel {
    /// `MSG_INFO_0`.
    Zero,
    /// `MSG_INFO_1`.
    One,
}

impl TryFrom<u32> for InfoLevel {
    type Error = NetApiStatus;

    fn try_from(level: u32) -> Result<Self, NetApiStatus> {
        match level {
            0 => Ok(Self::Zero),
            1 => Ok(Self::One),
            _ => Err(NetApiStatus::ERROR_INVALID_LEVEL),
        }
    }
}

impl InfoLevel {
    /// Size of one structure.
    const fn entry_size(self) -> usize {
        match self {
            Self::Zero => size_of::<MsgInfo0>(),
            Self::One => size_of::<MsgInfo1>(),
        }
    }

    /// Bytes one entry for `name` takes in a buffer: its structure and its string.
    fn entry_bytes(self, name: &str) -> usize {
        self.entry_size() + 2 * (name.encode_utf16().count() + 1)
    }

    /// How many of `names` to return within `prefmaxlen` bytes
    /// (`MAX_PREFERRED_LENGTH`, `0xFFFFFFFF`, allows all): at least one, so an
    /// enumeration with a resume handle always makes progress.
    pub(crate) fn entries_within(self, names: &[String], prefmaxlen: u32) -> usize {
        let budget = usize::try_from(prefmaxlen).unwrap_or(usize::MAX);
        let mut used = 0usize;
        let fitting = names
            .iter()
            .take_while(|name| {
                used = used.saturating_add(self.entry_bytes(name));
                used <= budget
            })
            .count();
        fitting.max(1).min(names.len())
    }

    /// Builds the buffer for `names`: an array of structures at the start of
    /// the block, then the strings.
    pub(crate) fn buffer(self, names: &[String]) -> Result<*mut u8, NetApiStatus> {
        let strings: Vec<Vec<u16>> = names.iter().map(|n| to_wide(n)).collect();
        let array_len = self.entry_size() * names.len();
        let total = array_len + strings.iter().map(|s| 2 * s.len()).sum::<usize>();
        // SAFETY: malloc takes any size; NULL is handled below.
        let block = unsafe { libc::malloc(total.max(1)) }.cast::<u8>();
        if block.is_null() {
            return Err(NetApiStatus::ERROR_NOT_ENOUGH_MEMORY);
        }
        let mut offset = array_len;
        for (i, string) in strings.iter().enumerate() {
            // SAFETY: offset + 2 * string.len() <= total by construction of
            // total, and offset is even, so the copy stays inside the block and
            // is aligned for u16 (malloc aligns for every type).
            let name = unsafe {
                let name = block.add(offset).cast::<u16>();
                std::ptr::copy_nonoverlapping(string.as_ptr(), name, string.len());
                name
            };
            offset += 2 * string.len();
            match self {
                // SAFETY: entry i lies in the array at the start of the block,
                // which malloc aligned for every type.
                Self::Zero => unsafe {
                    block
                        .cast::<MsgInfo0>()
                        .add(i)
                        .write(MsgInfo0 { msgi0_name: name });
                },
                // SAFETY: as for level 0.
                Self::One => unsafe {
                    block.cast::<MsgInfo1>().add(i).write(MsgInfo1 {
                        msgi1_name: name,
                        msgi1_forward_flag: 0,
                        msgi1_forward: std::ptr::null_mut(),
                    });
                },
            }
        }
        Ok(block)
    }
}

/// Frees a buffer made by [`InfoLevel::buffer`].
///
/// # Safety
/// `buffer` is NULL or a pointer [`InfoLevel::buffer`] returned and not yet freed.
pub(crate) unsafe fn free(buffer: *mut u8) {
    // SAFETY: the buffer came from malloc (or is NULL, which free ignores).
    unsafe { libc::free(buffer.cast()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the NUL-terminated UTF-16 string at `p`.
    ///
    /// # Safety
    /// `p` points to a NUL-terminated UTF-16 string.
    unsafe fn text(p: *const u16) -> String {
        // SAFETY: forwarded from the caller.
        unsafe { crate::wide::read_wide(p, 64) }.unwrap().unwrap()
    }

    #[test]
    fn buffers_hold_structures_then_strings() {
        let names = vec!["HOST1".to_owned(), "HELPDESK".to_owned()];
        let block = InfoLevel::One.buffer(&names).unwrap();
        // SAFETY: the block holds two MSG_INFO_1 whose names point into it.
        unsafe {
            let entries = std::slice::from_raw_parts(block.cast::<MsgInfo1>(), 2);
            assert_eq!(text(entries[0].msgi1_name), "HOST1");
            assert_eq!(text(entries[1].msgi1_name), "HELPDESK");
            assert!(entries[1].msgi1_forward.is_null());
            assert_eq!(entries[1].msgi1_forward_flag, 0);
            free(block);
        }
        let block = InfoLevel::Zero.buffer(&names[1..]).unwrap();
        // SAFETY: the block holds one MSG_INFO_0.
        unsafe {
            assert_eq!(text((*block.cast::<MsgInfo0>()).msgi0_name), "HELPDESK");
            free(block);
        }
        assert_eq!(InfoLevel::Zero.entry_bytes("AB"), size_of::<MsgInfo0>() + 6);
        let entry = InfoLevel::Zero.entry_bytes("HOST1");
        assert_eq!(InfoLevel::Zero.entries_within(&names, u32::MAX), 2);
        assert_eq!(InfoLevel::Zero.entries_within(&names, entry as u32), 1);
        assert_eq!(InfoLevel::Zero.entries_within(&names, 0), 1);
        assert_eq!(InfoLevel::Zero.entries_within(&[], 0), 0);
        assert_eq!(
            InfoLevel::try_from(7),
            Err(NetApiStatus::ERROR_INVALID_LEVEL)
        );
    }
}
