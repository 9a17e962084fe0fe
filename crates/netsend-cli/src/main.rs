//! `netsend`: NET SEND, NET NAME and the messenger service for Linux.
//!
//! The binary is a thin shell: it turns NET-style arguments into a request,
//! asks the running service over its control socket, and prints the answer or a
//! NERR code with its text and a hint.

mod agent;
mod alert;
mod args;
mod cmd;
mod conversations;
mod docs;
mod gateway;
mod popup;
mod view;

use std::process::ExitCode;

use clap::Parser;
use netsend_wire::status::NetApiStatus;

/// What a command failed with: a NERR/Win32 code and optional detail.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: NetApiStatus,
    detail: Option<String>,
    hint: Option<&'static str>,
    /// The process's exit status; 2 unless a command documents others.
    exit: u8,
}

impl Failure {
    /// A failure with a code and a detail line.
    pub(crate) fn new(status: NetApiStatus, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: Some(detail.into()),
            hint: None,
            exit: 2,
        }
    }

    /// Exits with `code` instead of 2 (`messenger status`: 3 not running,
    /// 4 unknown, as LSB status actions go).
    pub(crate) fn with_exit(mut self, code: u8) -> Self {
        self.exit = code;
        self
    }

    /// The detail line, if any.
    pub(crate) fn detail(&self) -> &str {
        self.detail.as_deref().unwrap_or("")
    }

    /// Whether the service could not be reached (not running, or the
    /// connection broke): worth trying again later.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(
            self.status,
            NetApiStatus::NERR_MSG_NOT_STARTED | NetApiStatus::NERR_NETWORK_ERROR
        )
    }

    /// Replaces the code's standard hint with one that fits the situation.
    pub(crate) fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    /// [`Failure::with_hint`] for one code only: a command whose 87 means a
    /// wrong message id, say, rather than a bad name.
    pub(crate) fn hint_if(self, status: NetApiStatus, hint: &'static str) -> Self {
        if self.status == status {
            self.with_hint(hint)
        } else {
            self
        }
    }
}

fn main() -> ExitCode {
    let argv = args::normalize(std::env::args_os().map(|a| a.to_string_lossy().into_owned()));
    let cli = args::Cli::parse_from(argv);
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("netsend: {}", f.status);
            // A detail may quote peer input (a remote host's error, a log
            // tail): sanitised, continuation lines indented.
            if let Some(detail) = &f.detail {
                eprintln!(
                    "  detail: {}",
                    netsend_proto::display::sanitize_detail(detail, "    ")
                );
            }
            if let Some(hint) = f.hint.or_else(|| f.status.hint()) {
                eprintln!("  hint: {hint}");
            }
            ExitCode::from(f.exit)
        }
    }
}
