//! `netsend alert`: raises an administrative alert and prints what became of
//! it per alert name; `--failed-unit` builds the text of a failed systemd
//! unit from its last journal lines (the `netsend-alert@.service` template).

use std::io::Read;
use std::process::{Command, Stdio};

use netsend_control::config::ClientConfig;
use netsend_control::types::{AlertClass, AlertHeld, AlertReport, AlertRequest};
use netsend_control::{Request, Response};
use netsend_proto::display::sanitize_name as clean;
use netsend_wire::status::NetApiStatus;

use crate::Failure;

/// Most bytes read of journalctl's output.
const MAX_JOURNAL_READ: u64 = 64 * 1024;
/// Most bytes of journal lines in an alert (the last ones are kept).
const MAX_JOURNAL_BYTES: usize = 2048;
/// Most characters kept of one journal line.
const MAX_LINE_CHARS: usize = 200;

/// An alert as the command line asked for it.
#[derive(Debug, clap::Args)]
pub(crate) struct AlertArgs {
    /// The alert's class: ADMIN, USER, PRINTING, ERRORLOG or NAME.
    #[arg(long, default_value = "ADMIN", value_parser = parse_class)]
    class: AlertClass,
    /// The service raising it (at most 80 characters).
    #[arg(long, default_value = "alert")]
    service: String,
    /// The program raising it, shown with the alert.
    #[arg(long)]
    program: Option<String>,
    /// Say that this systemd unit failed, with its last journal lines
    /// (for `OnFailure=netsend-alert@%n.service`); TEXT is then optional.
    #[arg(long, value_name = "UNIT")]
    failed_unit: Option<String>,
    /// With --failed-unit: how many of its last journal lines (1-50).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=50), requires = "failed_unit")]
    lines: u16,
    /// Print the per-name report as JSON.
    #[arg(long)]
    json: bool,
    /// The alert's text (joined with spaces; `-` reads stdin).
    #[arg(num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true, required_unless_present = "failed_unit")]
    words: Vec<String>,
}

/// An alert class in any case (NT's MESSAGE is NAME).
fn parse_class(s: &str) -> Result<AlertClass, String> {
    AlertClass::parse(s)
        .ok_or_else(|| format!("{s:?} is not one of ADMIN, USER, PRINTING, ERRORLOG, NAME"))
}

/// Raises the alert and prints the per-name report; fails with the first
/// name's NERR code when some name got it neither now nor queued.
pub(crate) async fn alert(config: &ClientConfig, args: AlertArgs) -> Result<(), Failure> {
    // No words is fine with --failed-unit: the unit's lines are the text.
    let mut text = if args.words.is_empty() {
        String::new()
    } else {
        crate::cmd::message_text(args.words.clone(), "netsend alert TEXT...")?
    };
    if let Some(unit) = &args.failed_unit {
        text = failed_unit_text(unit, args.lines, &text);
    }
    if text.trim().is_empty() {
        return Err(Failure::new(
            NetApiStatus::ERROR_INVALID_PARAMETER,
            "no alert text: netsend alert TEXT...",
        )
        .with_hint("give the text after the options, or `-` to read it from standard input"));
    }
    let request = Request::Alert(AlertRequest {
        class: args.class,
        service: args.service,
        text,
        program: args.program,
    });
    let report = match crate::cmd::call(config, request).await.map_err(hint)? {
        Response::Alert(report) => report,
        r => return Err(crate::cmd::unexpected(r)),
    };
    if args.json {
        crate::cmd::print_json(&report)?;
    } else {
        print_report(&report);
    }
    outcome(&report)
}

/// The hints for the refusals of an alert.
fn hint(f: Failure) -> Failure {
    if f.status == NetApiStatus::ERROR_ACCESS_DENIED {
        f.with_hint("alerts may be raised by root and the members of [alerter] groups (default: broadcast_group); ask an administrator to add you")
    } else if f.status == NetApiStatus::NERR_SERVICE_NOT_INSTALLED {
        f.with_hint("set [alerter] names in the service's configuration and restart it")
    } else {
        f
    }
}

fn print_report(report: &AlertReport) {
    match report.held {
        Some(AlertHeld::Batched { count }) => println!(
            "The alert is batched with identical ones ({count} so far); they go out as one message."
        ),
        Some(AlertHeld::Capped { max_per_minute }) => eprintln!(
            "The alert was dropped: more than {max_per_minute} alert messages went out in the last minute ([alerter] max_per_minute)."
        ),
        None => {}
    }
    for d in &report.delivered {
        println!(
            "The alert was sent to {} ({}).",
            clean(&d.name),
            clean(&d.address)
        );
    }
    for q in &report.queued {
        println!(
            "The alert waits in the queue for {} (queue id {}): {}.",
            clean(&q.name),
            q.id,
            clean(&q.reason)
        );
    }
    for f in &report.failed {
        eprintln!(
            "Could not alert {}: {} ({})",
            clean(&f.name),
            NetApiStatus(f.code),
            clean(&f.detail)
        );
    }
}

/// Success, unless the cap dropped the alert or a name got it neither now
/// nor queued.
fn outcome(report: &AlertReport) -> Result<(), Failure> {
    if let Some(AlertHeld::Capped { .. }) = report.held {
        return Err(Failure::new(
            NetApiStatus::ERROR_REQ_NOT_ACCEP,
            "the alert was dropped by [alerter] max_per_minute (counted in `netsend messenger status`)",
        ));
    }
    match report.failed.first() {
        None => Ok(()),
        Some(first) => Err(Failure::new(
            NetApiStatus(first.code),
            format!(
                "could not alert {} of {} names (listed above)",
                report.failed.len(),
                report.failed.len() + report.delivered.len() + report.queued.len()
            ),
        )),
    }
}

/// "UNIT failed", the caller's words, and the unit's last `lines` journal
/// lines (bounded: [`MAX_JOURNAL_BYTES`] in all, [`MAX_LINE_CHARS`] each).
fn failed_unit_text(unit: &str, lines: u16, words: &str) -> String {
    let mut text = format!("{unit} failed.");
    if !words.trim().is_empty() {
        text.push('\n');
        text.push_str(words.trim());
    }
    let journal = last_journal_lines(unit, lines);
    if !journal.is_empty() {
        text.push_str("\nLast journal lines:");
        for line in journal {
            text.push('\n');
            text.push_str(&line);
        }
    }
    text
}

/// The unit's last journal lines, as `journalctl` prints them; none when
/// it cannot be run.
fn last_journal_lines(unit: &str, lines: u16) -> Vec<String> {
    let child = Command::new("journalctl")
        .args(["--no-pager", "--quiet", "--output=short-iso"])
        .arg(format!("--lines={lines}"))
        .arg(format!("--unit={unit}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(MAX_JOURNAL_READ).read_to_end(&mut out);
    }
    let _ = child.kill();
    let _ = child.wait();
    let all: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| l.chars().take(MAX_LINE_CHARS).collect())
        .collect();
    // The last lines that fit.
    let mut bytes = 0;
    let keep = all
        .iter()
        .rev()
        .take_while(|l| {
            bytes += l.len() + 1;
            bytes <= MAX_JOURNAL_BYTES
        })
        .count();
    all[all.len() - keep..].to_vec()
}
