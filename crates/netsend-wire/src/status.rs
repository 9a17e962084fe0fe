//! NERR and Win32 status codes with their standard texts, in one table used by
//! the CLI and the C ABI, and the mapping from SMB errors to those codes.

use std::fmt;

/// A `NET_API_STATUS`: a NERR (2100+) or Win32 error code. An open newtype, so
/// codes outside the table survive unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetApiStatus(pub u32);

/// One row of the table: value, symbol, standard text, optional hint.
struct Row {
    code: u32,
    symbol: &'static str,
    text: &'static str,
    hint: Option<&'static str>,
}

impl NetApiStatus {
    /// `NERR_Success` (0): The operation completed successfully.
    pub const NERR_SUCCESS: Self = Self(0);
    /// `ERROR_ACCESS_DENIED` (5): Access is denied.
    pub const ERROR_ACCESS_DENIED: Self = Self(5);
    /// `ERROR_NOT_ENOUGH_MEMORY` (8): Not enough memory resources are available to process this command.
    pub const ERROR_NOT_ENOUGH_MEMORY: Self = Self(8);
    /// `ERROR_NOT_SUPPORTED` (50): The request is not supported.
    pub const ERROR_NOT_SUPPORTED: Self = Self(50);
    /// `ERROR_BAD_NETPATH` (53): The network path was not found.
    pub const ERROR_BAD_NETPATH: Self = Self(53);
    /// `ERROR_REQ_NOT_ACCEP` (71): No more connections can be made to this remote computer at this time because there are already as many connections as the computer can accept.
    pub const ERROR_REQ_NOT_ACCEP: Self = Self(71);
    /// `ERROR_INVALID_PARAMETER` (87): The parameter is incorrect.
    pub const ERROR_INVALID_PARAMETER: Self = Self(87);
    /// `ERROR_INVALID_NAME` (123): The filename, directory name, or volume label syntax is incorrect.
    pub const ERROR_INVALID_NAME: Self = Self(123);
    /// `ERROR_INVALID_LEVEL` (124): The system call level is not correct.
    pub const ERROR_INVALID_LEVEL: Self = Self(124);
    /// `ERROR_MORE_DATA` (234): More data is available.
    pub const ERROR_MORE_DATA: Self = Self(234);
    /// `RPC_S_SERVER_UNAVAILABLE` (1722): The RPC server is unavailable.
    pub const RPC_S_SERVER_UNAVAILABLE: Self = Self(1722);
    /// `NERR_NetNotStarted` (2102): The workstation driver is not installed.
    pub const NERR_NET_NOT_STARTED: Self = Self(2102);
    /// `NERR_BufTooSmall` (2123): The API return buffer is too small.
    pub const NERR_BUF_TOO_SMALL: Self = Self(2123);
    /// `NERR_NetworkError` (2136): A general network error occurred.
    pub const NERR_NETWORK_ERROR: Self = Self(2136);
    /// `NERR_WkstaNotStarted` (2138): The Workstation service has not been started.
    pub const NERR_WKSTA_NOT_STARTED: Self = Self(2138);
    /// `NERR_InternalError` (2140): An internal Windows error occurred.
    pub const NERR_INTERNAL_ERROR: Self = Self(2140);
    /// `NERR_ServiceNotInstalled` (2184): The service has not been started.
    pub const NERR_SERVICE_NOT_INSTALLED: Self = Self(2184);
    /// `NERR_NoComputerName` (2270): The computer name could not be added as a message alias. The name may already exist on the network.
    pub const NERR_NO_COMPUTER_NAME: Self = Self(2270);
    /// `NERR_MsgAlreadyStarted` (2271): The Messenger service is already started.
    pub const NERR_MSG_ALREADY_STARTED: Self = Self(2271);
    /// `NERR_MsgInitFailed` (2272): The Messenger service failed to start.
    pub const NERR_MSG_INIT_FAILED: Self = Self(2272);
    /// `NERR_NameNotFound` (2273): The message alias could not be found on the network.
    pub const NERR_NAME_NOT_FOUND: Self = Self(2273);
    /// `NERR_AlreadyForwarded` (2274): This message alias has already been forwarded.
    pub const NERR_ALREADY_FORWARDED: Self = Self(2274);
    /// `NERR_AddForwarded` (2275): This message alias has been added but is still forwarded.
    pub const NERR_ADD_FORWARDED: Self = Self(2275);
    /// `NERR_AlreadyExists` (2276): This message alias already exists locally.
    pub const NERR_ALREADY_EXISTS: Self = Self(2276);
    /// `NERR_TooManyNames` (2277): The maximum number of added message aliases has been exceeded.
    pub const NERR_TOO_MANY_NAMES: Self = Self(2277);
    /// `NERR_DelComputerName` (2278): The computer name could not be deleted.
    pub const NERR_DEL_COMPUTER_NAME: Self = Self(2278);
    /// `NERR_LocalForward` (2279): Messages cannot be forwarded back to the same workstation.
    pub const NERR_LOCAL_FORWARD: Self = Self(2279);
    /// `NERR_GrpMsgProcessor` (2280): An error occurred in the domain message processor.
    pub const NERR_GRP_MSG_PROCESSOR: Self = Self(2280);
    /// `NERR_PausedRemote` (2281): The message was sent, but the recipient has paused the Messenger service.
    pub const NERR_PAUSED_REMOTE: Self = Self(2281);
    /// `NERR_BadReceive` (2282): The message was sent but not received.
    pub const NERR_BAD_RECEIVE: Self = Self(2282);
    /// `NERR_NameInUse` (2283): The message alias is currently in use. Try again later.
    pub const NERR_NAME_IN_USE: Self = Self(2283);
    /// `NERR_MsgNotStarted` (2284): The Messenger service has not been started.
    pub const NERR_MSG_NOT_STARTED: Self = Self(2284);
    /// `NERR_NotLocalName` (2285): The name is not on the local computer.
    pub const NERR_NOT_LOCAL_NAME: Self = Self(2285);
    /// `NERR_NoForwardName` (2286): The forwarded message alias could not be found on the network.
    pub const NERR_NO_FORWARD_NAME: Self = Self(2286);
    /// `NERR_RemoteFull` (2287): The message alias table on the remote station is full.
    pub const NERR_REMOTE_FULL: Self = Self(2287);
    /// `NERR_NameNotForwarded` (2288): Messages for this alias are not currently being forwarded.
    pub const NERR_NAME_NOT_FORWARDED: Self = Self(2288);
    /// `NERR_TruncatedBroadcast` (2289): The broadcast message was truncated.
    pub const NERR_TRUNCATED_BROADCAST: Self = Self(2289);
    /// `NERR_InvalidDevice` (2294): This is an invalid device name.
    pub const NERR_INVALID_DEVICE: Self = Self(2294);
    /// `NERR_WriteFault` (2295): A write fault occurred.
    pub const NERR_WRITE_FAULT: Self = Self(2295);
    /// `NERR_DuplicateName` (2297): A duplicate message alias exists on the network.
    pub const NERR_DUPLICATE_NAME: Self = Self(2297);
    /// `NERR_DeleteLater` (2298): This message alias will be deleted later.
    pub const NERR_DELETE_LATER: Self = Self(2298);
    /// `NERR_IncompleteDel` (2299): The message alias was not successfully deleted from all networks.
    pub const NERR_INCOMPLETE_DEL: Self = Self(2299);
    /// `NERR_MultipleNets` (2300): This operation is not supported on computers with multiple networks.
    pub const NERR_MULTIPLE_NETS: Self = Self(2300);
    /// `NERR_ClientNameNotFound` (2312): A session does not exist with that computer name.
    pub const NERR_CLIENT_NAME_NOT_FOUND: Self = Self(2312);
    /// `NERR_InvalidComputer` (2351): This computer name is invalid.
    pub const NERR_INVALID_COMPUTER: Self = Self(2351);
}

/// Every known code, in numeric order.
const TABLE: &[Row] = &[
    Row { code: 0, symbol: "NERR_Success", text: "The operation completed successfully.", hint: None },
    Row { code: 5, symbol: "ERROR_ACCESS_DENIED", text: "Access is denied.", hint: Some("this needs more rights: run it as root, or as the owner of the alias") },
    Row { code: 8, symbol: "ERROR_NOT_ENOUGH_MEMORY", text: "Not enough memory resources are available to process this command.", hint: None },
    Row { code: 50, symbol: "ERROR_NOT_SUPPORTED", text: "The request is not supported.", hint: Some("send to a single name instead") },
    Row { code: 53, symbol: "ERROR_BAD_NETPATH", text: "The network path was not found.", hint: None },
    Row { code: 71, symbol: "ERROR_REQ_NOT_ACCEP", text: "No more connections can be made to this remote computer at this time because there are already as many connections as the computer can accept.", hint: None },
    Row { code: 87, symbol: "ERROR_INVALID_PARAMETER", text: "The parameter is incorrect.", hint: Some("names are 1 to 15 characters, without control characters or any of \\ / : * ? \" < > |; check the message length too") },
    Row { code: 123, symbol: "ERROR_INVALID_NAME", text: "The filename, directory name, or volume label syntax is incorrect.", hint: None },
    Row { code: 124, symbol: "ERROR_INVALID_LEVEL", text: "The system call level is not correct.", hint: None },
    Row { code: 234, symbol: "ERROR_MORE_DATA", text: "More data is available.", hint: None },
    Row { code: 1722, symbol: "RPC_S_SERVER_UNAVAILABLE", text: "The RPC server is unavailable.", hint: None },
    Row { code: 2102, symbol: "NERR_NetNotStarted", text: "The workstation driver is not installed.", hint: None },
    Row { code: 2123, symbol: "NERR_BufTooSmall", text: "The API return buffer is too small.", hint: None },
    Row { code: 2136, symbol: "NERR_NetworkError", text: "A general network error occurred.", hint: Some("the host did not complete the exchange: is its messenger (TCP port 139) reachable and running?") },
    Row { code: 2138, symbol: "NERR_WkstaNotStarted", text: "The Workstation service has not been started.", hint: None },
    Row { code: 2140, symbol: "NERR_InternalError", text: "An internal Windows error occurred.", hint: None },
    Row { code: 2184, symbol: "NERR_ServiceNotInstalled", text: "The service has not been started.", hint: None },
    Row { code: 2270, symbol: "NERR_NoComputerName", text: "The computer name could not be added as a message alias. The name may already exist on the network.", hint: None },
    Row { code: 2271, symbol: "NERR_MsgAlreadyStarted", text: "The Messenger service is already started.", hint: Some("stop it first with `netsend messenger stop`, or check `netsend messenger status`") },
    Row { code: 2272, symbol: "NERR_MsgInitFailed", text: "The Messenger service failed to start.", hint: Some("see the log (STATE_DIR/netsend.log) or run `netsend messenger start --foreground`") },
    Row { code: 2273, symbol: "NERR_NameNotFound", text: "The message alias could not be found on the network.", hint: Some("check the name (`nmblookup NAME#03`) and that the recipient's messenger service runs; a static entry in [[static_names]] helps across subnets") },
    Row { code: 2274, symbol: "NERR_AlreadyForwarded", text: "This message alias has already been forwarded.", hint: None },
    Row { code: 2275, symbol: "NERR_AddForwarded", text: "This message alias has been added but is still forwarded.", hint: None },
    Row { code: 2276, symbol: "NERR_AlreadyExists", text: "This message alias already exists locally.", hint: Some("list the aliases with `netsend name`") },
    Row { code: 2277, symbol: "NERR_TooManyNames", text: "The maximum number of added message aliases has been exceeded.", hint: Some("delete an alias you no longer need with `netsend name ALIAS /delete`") },
    Row { code: 2278, symbol: "NERR_DelComputerName", text: "The computer name could not be deleted.", hint: Some("the computer name is always an alias; delete only names added with /ADD") },
    Row { code: 2279, symbol: "NERR_LocalForward", text: "Messages cannot be forwarded back to the same workstation.", hint: None },
    Row { code: 2280, symbol: "NERR_GrpMsgProcessor", text: "An error occurred in the domain message processor.", hint: None },
    Row { code: 2281, symbol: "NERR_PausedRemote", text: "The message was sent, but the recipient has paused the Messenger service.", hint: Some("the recipient paused its messenger service; try again later") },
    Row { code: 2282, symbol: "NERR_BadReceive", text: "The message was sent but not received.", hint: Some("the recipient refused the message (not receiving, or no room); try again later") },
    Row { code: 2283, symbol: "NERR_NameInUse", text: "The message alias is currently in use. Try again later.", hint: None },
    Row { code: 2284, symbol: "NERR_MsgNotStarted", text: "The Messenger service has not been started.", hint: Some("start it with `netsend messenger start` (or `systemctl start netsend`)") },
    Row { code: 2285, symbol: "NERR_NotLocalName", text: "The name is not on the local computer.", hint: Some("list the aliases with `netsend name`") },
    Row { code: 2286, symbol: "NERR_NoForwardName", text: "The forwarded message alias could not be found on the network.", hint: None },
    Row { code: 2287, symbol: "NERR_RemoteFull", text: "The message alias table on the remote station is full.", hint: None },
    Row { code: 2288, symbol: "NERR_NameNotForwarded", text: "Messages for this alias are not currently being forwarded.", hint: None },
    Row { code: 2289, symbol: "NERR_TruncatedBroadcast", text: "The broadcast message was truncated.", hint: Some("broadcast text must fit one datagram: send a shorter text") },
    Row { code: 2294, symbol: "NERR_InvalidDevice", text: "This is an invalid device name.", hint: None },
    Row { code: 2295, symbol: "NERR_WriteFault", text: "A write fault occurred.", hint: None },
    Row { code: 2297, symbol: "NERR_DuplicateName", text: "A duplicate message alias exists on the network.", hint: Some("another host already uses this name on the network; pick another alias") },
    Row { code: 2298, symbol: "NERR_DeleteLater", text: "This message alias will be deleted later.", hint: None },
    Row { code: 2299, symbol: "NERR_IncompleteDel", text: "The message alias was not successfully deleted from all networks.", hint: None },
    Row { code: 2300, symbol: "NERR_MultipleNets", text: "This operation is not supported on computers with multiple networks.", hint: None },
    Row { code: 2312, symbol: "NERR_ClientNameNotFound", text: "A session does not exist with that computer name.", hint: None },
    Row { code: 2351, symbol: "NERR_InvalidComputer", text: "This computer name is invalid.", hint: None },
];

impl NetApiStatus {
    fn row(self) -> Option<&'static Row> {
        TABLE
            .binary_search_by_key(&self.0, |r| r.code)
            .ok()
            .map(|i| &TABLE[i])
    }

    /// The SDK symbol, e.g. `NERR_NameNotFound`.
    pub fn symbol(self) -> Option<&'static str> {
        self.row().map(|r| r.symbol)
    }

    /// The standard message text.
    pub fn text(self) -> Option<&'static str> {
        self.row().map(|r| r.text)
    }

    /// What a person can do about it, for the common codes.
    pub fn hint(self) -> Option<&'static str> {
        self.row().and_then(|r| r.hint)
    }

    /// Whether this is success (0).
    pub const fn is_success(self) -> bool {
        self.0 == 0
    }

    /// Maps an SMB DOS error (class, code) from a messenger reply to the code
    /// NetMessageBufferSend returns (protocol digest §11.1).
    pub const fn from_dos_error(class: u8, code: u16) -> Self {
        match (class, code) {
            (0, _) => Self::NERR_SUCCESS,
            (0x02, 0x0051) => Self::NERR_PAUSED_REMOTE,
            (0x02, 0x0052) | (0x02, 0x0053) | (0x01, 71) => Self::NERR_BAD_RECEIVE,
            _ => Self::NERR_NETWORK_ERROR,
        }
    }

    /// Maps an NTSTATUS from a messenger reply likewise.
    pub const fn from_nt_status(status: u32) -> Self {
        match status {
            0 => Self::NERR_SUCCESS,
            0xC000_00CF => Self::NERR_PAUSED_REMOTE,
            0xC000_00D0 | 0xC000_007F => Self::NERR_BAD_RECEIVE,
            _ => Self::NERR_NETWORK_ERROR,
        }
    }
}

impl fmt::Display for NetApiStatus {
    /// `NERR_NameNotFound (2273): The message alias could not be found on the network.`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row() {
            Some(r) => write!(f, "{} ({}): {}", r.symbol, r.code, r.text),
            None => write!(f, "error {}", self.0),
        }
    }
}

impl fmt::Debug for NetApiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbol() {
            Some(s) => write!(f, "{s}({})", self.0),
            None => write!(f, "NetApiStatus({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(TABLE.windows(2).all(|w| w[0].code < w[1].code));
        assert!(TABLE
            .iter()
            .all(|r| !r.symbol.is_empty() && r.text.ends_with('.')));
        assert_eq!(NetApiStatus::NERR_NETWORK_ERROR.0, 0x858);
        assert_eq!(NetApiStatus::NERR_MSG_NOT_STARTED.0, 2284);
    }

    #[test]
    fn display_matches_the_cli_format() {
        assert_eq!(
            NetApiStatus::NERR_NAME_NOT_FOUND.to_string(),
            "NERR_NameNotFound (2273): The message alias could not be found on the network."
        );
        assert_eq!(NetApiStatus(4242).to_string(), "error 4242");
        assert!(NetApiStatus::NERR_MSG_NOT_STARTED
            .hint()
            .unwrap()
            .contains("netsend messenger start"));
    }

    #[test]
    fn smb_errors_map_to_nerr() {
        assert_eq!(
            NetApiStatus::from_dos_error(2, 0x51),
            NetApiStatus::NERR_PAUSED_REMOTE
        );
        assert_eq!(
            NetApiStatus::from_dos_error(2, 0x52),
            NetApiStatus::NERR_BAD_RECEIVE
        );
        assert_eq!(
            NetApiStatus::from_dos_error(1, 71),
            NetApiStatus::NERR_BAD_RECEIVE
        );
        assert_eq!(
            NetApiStatus::from_dos_error(2, 1),
            NetApiStatus::NERR_NETWORK_ERROR
        );
        assert_eq!(
            NetApiStatus::from_nt_status(0xC000_00D0),
            NetApiStatus::NERR_BAD_RECEIVE
        );
    }
}
