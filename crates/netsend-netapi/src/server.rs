//! `NetServerEnum` at levels 100 (`SERVER_INFO_100`) and 101
//! (`SERVER_INFO_101`): the browse list of the local service, as Windows
//! returns it, in one `malloc` block (structures, then strings) released
//! with `NetApiBufferFree`.

use netsend_control::{Request, Response};
use netsend_wire::browse::server_type::{ALL, DOMAIN_ENUM};
use netsend_wire::status::NetApiStatus;

use crate::local::LocalService;
use crate::wide::to_wide;

/// `PLATFORM_ID_NT`, what Windows reports for every browse-list entry.
pub(crate) const PLATFORM_ID_NT: u32 = 500;

/// `SERVER_INFO_100`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ServerInfo100 {
    /// `sv100_platform_id`.
    pub(crate) sv100_platform_id: u32,
    /// `sv100_name`.
    pub(crate) sv100_name: *mut u16,
}

/// `SERVER_INFO_101`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ServerInfo101 {
    /// `sv101_platform_id`.
    pub(crate) sv101_platform_id: u32,
    /// `sv101_name`.
    pub(crate) sv101_name: *mut u16,
    /// `sv101_version_major`.
    pub(crate) sv101_version_major: u32,
    /// `sv101_version_minor`.
    pub(crate) sv101_version_minor: u32,
    /// `sv101_type`: the `SV_TYPE_*` bits.
    pub(crate) sv101_type: u32,
    /// `sv101_comment`.
    pub(crate) sv101_comment: *mut u16,
}

/// One entry of the enumeration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    /// Its name.
    pub(crate) name: String,
    /// OS version major, minor.
    pub(crate) version: (u8, u8),
    /// `SV_TYPE_*`.
    pub(crate) server_type: u32,
    /// Its comment (for a workgroup: its master browser).
    pub(crate) comment: String,
}

/// The levels `NetServerEnum` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerLevel {
    /// `SERVER_INFO_100`.
    L100,
    /// `SERVER_INFO_101`.
    L101,
}

impl TryFrom<u32> for ServerLevel {
    type Error = NetApiStatus;

    fn try_from(level: u32) -> Result<Self, NetApiStatus> {
        match level {
            100 => Ok(Self::L100),
            101 => Ok(Self::L101),
            _ => Err(NetApiStatus::ERROR_INVALID_LEVEL),
        }
    }
}

/// The entries of `domain` (`None`: our workgroup) whose type shares a bit
/// with `servertype`; with `SV_TYPE_DOMAIN_ENUM` in it (and not
/// `SV_TYPE_ALL`, which lists the hosts), the workgroups.
pub(crate) fn servers(
    service: &LocalService,
    servertype: u32,
    domain: Option<String>,
) -> Result<Vec<Server>, NetApiStatus> {
    if servertype != ALL && servertype & DOMAIN_ENUM != 0 {
        return match service.call(&Request::ViewDomains)? {
            Response::Domains { domains } => Ok(domains
                .into_iter()
                .map(|d| Server {
                    name: d.name,
                    version: (0, 0),
                    server_type: DOMAIN_ENUM,
                    comment: d.master,
                })
                .collect()),
            _ => Err(NetApiStatus::NERR_INTERNAL_ERROR),
        };
    }
    match service.call(&Request::View { domain })? {
        Response::Hosts { hosts, .. } => Ok(hosts
            .into_iter()
            .filter(|h| h.server_type & servertype != 0)
            .map(|h| Server {
                name: h.name,
                version: h.os_version,
                server_type: h.server_type,
                comment: h.comment,
            })
            .collect()),
        _ => Err(NetApiStatus::NERR_INTERNAL_ERROR),
    }
}

impl ServerLevel {
    const fn entry_size(self) -> usize {
        match self {
            Self::L100 => size_of::<ServerInfo100>(),
            Self::L101 => size_of::<ServerInfo101>(),
        }
    }

    fn strings(self, s: &Server) -> Vec<Vec<u16>> {
        match self {
            Self::L100 => vec![to_wide(&s.name)],
            Self::L101 => vec![to_wide(&s.name), to_wide(&s.comment)],
        }
    }

    fn entry_bytes(self, s: &Server) -> usize {
        self.entry_size() + self.strings(s).iter().map(|w| 2 * w.len()).sum::<usize>()
    }

    /// How many of `servers` fit in `prefmaxlen` bytes (`MAX_PREFERRED_LENGTH`
    /// allows all). Windows returns what fits and `ERROR_MORE_DATA`; at
    /// least one, so paging always makes progress.
    pub(crate) fn entries_within(self, servers: &[Server], prefmaxlen: u32) -> usize {
        let budget = usize::try_from(prefmaxlen).unwrap_or(usize::MAX);
        let mut used = 0usize;
        let fitting = servers
            .iter()
            .take_while(|s| {
                used = used.saturating_add(self.entry_bytes(s));
                used <= budget
            })
            .count();
        fitting.max(1).min(servers.len())
    }

    /// The buffer for `servers`: the structures, then their strings.
    pub(crate) fn buffer(self, servers: &[Server]) -> Result<*mut u8, NetApiStatus> {
        let strings: Vec<Vec<Vec<u16>>> = servers.iter().map(|s| self.strings(s)).collect();
        let array_len = self.entry_size() * servers.len();
        let total = array_len + strings.iter().flatten().map(|w| 2 * w.len()).sum::<usize>();
        // SAFETY: malloc takes any size; NULL is handled below.
        let block = unsafe { libc::malloc(total.max(1)) }.cast::<u8>();
        if block.is_null() {
            return Err(NetApiStatus::ERROR_NOT_ENOUGH_MEMORY);
        }
        let mut offset = array_len;
        for (i, (server, wide)) in servers.iter().zip(&strings).enumerate() {
            let mut placed = Vec::with_capacity(wide.len());
            for w in wide {
                // SAFETY: offset + 2 * w.len() <= total by construction of
                // total; offset is even, so the copy stays in the block and is
                // aligned for u16 (malloc aligns for every type).
                unsafe {
                    let p = block.add(offset).cast::<u16>();
                    std::ptr::copy_nonoverlapping(w.as_ptr(), p, w.len());
                    placed.push(p);
                }
                offset += 2 * w.len();
            }
            match self {
                // SAFETY: entry i lies in the array at the start of the
                // block, aligned by malloc.
                Self::L100 => unsafe {
                    block.cast::<ServerInfo100>().add(i).write(ServerInfo100 {
                        sv100_platform_id: PLATFORM_ID_NT,
                        sv100_name: placed[0],
                    });
                },
                // SAFETY: as for level 100.
                Self::L101 => unsafe {
                    block.cast::<ServerInfo101>().add(i).write(ServerInfo101 {
                        sv101_platform_id: PLATFORM_ID_NT,
                        sv101_name: placed[0],
                        sv101_version_major: u32::from(server.version.0),
                        sv101_version_minor: u32::from(server.version.1),
                        sv101_type: server.server_type,
                        sv101_comment: placed[1],
                    });
                },
            }
        }
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, comment: &str) -> Server {
        Server {
            name: name.into(),
            version: (6, 1),
            server_type: 0x801,
            comment: comment.into(),
        }
    }

    #[test]
    fn level_101_buffers_hold_structures_then_strings() {
        let list = [server("ALPHA", "first"), server("BETA", "")];
        let block = ServerLevel::L101.buffer(&list).unwrap();
        // SAFETY: the block holds two SERVER_INFO_101 pointing into it.
        unsafe {
            let e = std::slice::from_raw_parts(block.cast::<ServerInfo101>(), 2);
            let text = |p| crate::wide::read_wide(p, 64).unwrap().unwrap();
            assert_eq!(text(e[0].sv101_name), "ALPHA");
            assert_eq!(text(e[0].sv101_comment), "first");
            assert_eq!(text(e[1].sv101_comment), "");
            assert_eq!((e[1].sv101_platform_id, e[1].sv101_type), (500, 0x801));
            assert_eq!((e[1].sv101_version_major, e[1].sv101_version_minor), (6, 1));
            crate::info::free(block);
        }
        let one = ServerLevel::L100.entry_bytes(&list[0]) as u32;
        assert_eq!(ServerLevel::L100.entries_within(&list, one), 1);
        assert_eq!(ServerLevel::L100.entries_within(&list, u32::MAX), 2);
        assert_eq!(ServerLevel::L100.entries_within(&list, 0), 1);
        assert_eq!(
            ServerLevel::try_from(102),
            Err(NetApiStatus::ERROR_INVALID_LEVEL)
        );
    }
}
