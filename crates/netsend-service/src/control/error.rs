//! Why a control request failed, and the NERR/Win32 status each failure
//! answers with: the one place that mapping is made.

use std::net::Ipv4Addr;

use netsend_proto::queue::BadExpiry;
use netsend_wire::status::NetApiStatus;

use crate::delivery::forward::ForwardError;
use crate::outbound::send::SendFailure;
use crate::store::InboxError;
use netsend_control::protocol::MAX_REQUEST_LEN;
use netsend_control::Response;

/// A control request that failed; its text is the answer's `detail`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    /// The request line is longer than [`MAX_REQUEST_LEN`].
    #[error("request longer than {MAX_REQUEST_LEN} bytes")]
    TooLong,
    /// The request line is not a request.
    #[error("bad request: {0}")]
    BadRequest(#[from] serde_json::Error),
    /// A remote caller asked for a call netapi32 does not offer remotely.
    #[error("only sends and message-name calls may be run remotely")]
    NotRemote,
    /// A local caller asked for the delivery only another netsend host makes
    /// over the remote channel.
    #[error("a verified delivery comes from another netsend host over the remote channel only")]
    OnlyFromHosts,
    /// Someone other than root or the service's own user asked it to stop.
    #[error("only root may stop the messenger service")]
    MayNotStop,
    /// A caller outside the broadcast group sent to many (`what`: "broadcast",
    /// "send to /USERS").
    #[error("only root and members of the {group} group may {what}")]
    NotInGroup {
        /// The configured `broadcast_group`.
        group: String,
        /// What was refused.
        what: &'static str,
    },
    /// An ordinary user tried to add an alias that is another account's
    /// login name.
    #[error(
        "{alias} is the login name of the account {account} on this host; only root may add it"
    )]
    LoginName {
        /// The alias, upper case.
        alias: String,
        /// The account it names.
        account: String,
    },
    /// An ordinary user holds the most added aliases one user may, or the
    /// table is full.
    #[error("cannot add {name:?}: the alias table is full, or you hold the most added aliases one user may ({per_user}, [limits] max_aliases_per_user)")]
    TooManyAliases {
        /// The alias as asked for.
        name: String,
        /// `[limits] max_aliases_per_user`.
        per_user: usize,
    },
    /// The alias table refused a change (`action`: "add", "delete",
    /// "forward", "cancel the forward of") with `status`.
    #[error("cannot {action} {name:?}")]
    Alias {
        /// What was asked.
        action: &'static str,
        /// The alias as asked for.
        name: String,
        /// The table's status.
        status: NetApiStatus,
    },
    /// Another host holds the name on the network.
    #[error("{alias} is already registered on the network by {owner}")]
    NameInUse {
        /// The alias, upper case.
        alias: String,
        /// The host that holds it.
        owner: Ipv4Addr,
    },
    /// A forward could not be set or cancelled.
    #[error(transparent)]
    Forward(#[from] ForwardError),
    /// The caller has no inbox message with this id.
    #[error("no message {0} in your inbox")]
    NoMessage(i64),
    /// The caller sent no recorded message with this id.
    #[error("no message {0} sent by you")]
    NoSent(i64),
    /// The away text was refused.
    #[error(transparent)]
    AwayText(#[from] netsend_proto::away::AwayTextError),
    /// The caller has no waiting queue entry with this id.
    #[error("no waiting message {0} of yours in the queue")]
    NoQueued(i64),
    /// A queued send asked for an expiry out of bounds.
    #[error(transparent)]
    Expiry(#[from] BadExpiry),
    /// The message could not be sent.
    #[error(transparent)]
    Send(#[from] SendFailure),
    /// A host asked for its names (`netsend view \\HOST`) did not answer
    /// the node status query.
    #[error("{host} ({address}) did not answer a node status query")]
    NoNodeStatus {
        /// The host as asked for.
        host: String,
        /// The address asked.
        address: Ipv4Addr,
    },
    /// A workgroup name that is not a NetBIOS name.
    #[error("{0:?} is not a workgroup name")]
    BadDomain(String),
    /// The message could not be sent now, nor queued: the sender's share of
    /// the queue is full.
    #[error("{failure}; and {full}")]
    QueueFull {
        /// Why it could not be sent now.
        failure: SendFailure,
        /// The queue's refusal.
        full: Box<InboxError>,
    },
    /// A read of the inbox failed (a refused search, a read stopped for
    /// taking too long, or the database).
    #[error(transparent)]
    Read(Box<InboxError>),
    /// An alert was raised while the Alerter is off.
    #[error("the Alerter is off: no [alerter] names are configured, or [alerter] enabled = false")]
    AlerterOff,
    /// `GatewayStatus` without `[gateway]`.
    #[error("this host is no site gateway: no [gateway] is configured")]
    GatewayOff,
    /// A caller outside `[alerter] groups` raised an alert.
    #[error("only root and members of {groups} may raise alerts ([alerter] groups)")]
    MayNotAlert {
        /// The groups that may.
        groups: String,
    },
    /// An alert's service name, program or text is not acceptable.
    #[error("bad alert: {0}")]
    BadAlert(String),
    /// A change to the store (or a read answered as one) failed.
    #[error(transparent)]
    Store(Box<InboxError>),
}

impl ControlError {
    /// A failed read of the inbox.
    pub(crate) fn read(error: InboxError) -> Self {
        Self::Read(Box::new(error))
    }

    /// A failed change to the store.
    pub(crate) fn store(error: InboxError) -> Self {
        Self::Store(Box::new(error))
    }

    /// The NERR/Win32 status the control protocol answers this failure with.
    pub(crate) fn status(&self) -> NetApiStatus {
        match self {
            Self::TooLong
            | Self::BadRequest(_)
            | Self::NoMessage(_)
            | Self::NoSent(_)
            | Self::NoQueued(_)
            | Self::Expiry(_)
            | Self::AwayText(_)
            | Self::BadDomain(_) => NetApiStatus::ERROR_INVALID_PARAMETER,
            Self::NoNodeStatus { .. } => NetApiStatus::ERROR_BAD_NETPATH,
            Self::NotRemote | Self::OnlyFromHosts => NetApiStatus::ERROR_NOT_SUPPORTED,
            Self::MayNotStop | Self::NotInGroup { .. } | Self::LoginName { .. } => {
                NetApiStatus::ERROR_ACCESS_DENIED
            }
            Self::TooManyAliases { .. } => NetApiStatus::NERR_TOO_MANY_NAMES,
            Self::Alias { status, .. } => *status,
            Self::NameInUse { .. } => NetApiStatus::NERR_DUPLICATE_NAME,
            Self::Forward(e) => e.status(),
            Self::Send(failure) => failure.status(),
            Self::QueueFull { .. } => NetApiStatus::ERROR_REQ_NOT_ACCEP,
            Self::Read(e) => match **e {
                InboxError::Search(_) => NetApiStatus::ERROR_INVALID_PARAMETER,
                InboxError::TooSlow => NetApiStatus::ERROR_REQ_NOT_ACCEP,
                _ => NetApiStatus::NERR_INTERNAL_ERROR,
            },
            Self::Store(_) => NetApiStatus::NERR_INTERNAL_ERROR,
            Self::AlerterOff | Self::GatewayOff => NetApiStatus::NERR_SERVICE_NOT_INSTALLED,
            Self::MayNotAlert { .. } => NetApiStatus::ERROR_ACCESS_DENIED,
            Self::BadAlert(_) => NetApiStatus::ERROR_INVALID_PARAMETER,
        }
    }
}

impl From<ControlError> for Response {
    fn from(error: ControlError) -> Self {
        Self::Error {
            code: error.status().0,
            detail: error.to_string(),
        }
    }
}
