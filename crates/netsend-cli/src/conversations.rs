//! The conversation commands: `netsend sent` (the sent archive), `netsend
//! inbox --with NAME` (one correspondent, both directions), `netsend reply`
//! and `netsend away`, and what they share with `netsend inbox`: how many
//! entries are shown ([`Shown`]) and `--since`.

use netsend_control::config::ClientConfig;
use netsend_control::protocol::MAX_PAGE;
use netsend_control::types::{AwayState, SentKind, SentRecord, ThreadEntry};
use netsend_control::{Request, Response};
use netsend_proto::display::{reply_hint, sanitize_first_line, sanitize_name as clean};
use netsend_wire::status::NetApiStatus;

use crate::args::Newest;
use crate::cmd::{call, message_text, print_json, print_message_line, unexpected, when};
use crate::Failure;

/// Entries shown when neither `-n` nor `--all` says otherwise.
pub(crate) const DEFAULT_LINES: usize = 20;

/// How many entries a listing shows: the newest `count`, or all (`None`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shown {
    /// The newest this many; `None`: every one.
    pub(crate) count: Option<usize>,
}

impl Shown {
    /// From `-n N` and `--all` (default: the newest [`DEFAULT_LINES`]).
    pub(crate) fn new(newest: Newest) -> Self {
        Self {
            count: (!newest.all).then(|| newest.lines.unwrap_or(DEFAULT_LINES)),
        }
    }

    /// The footer under a listing of `shown` entries of `total` when older
    /// ones were left out, e.g. `(20 of 1234 shown; netsend inbox --all for
    /// every message)`.
    pub(crate) fn footer(self, shown: usize, total: Option<u64>, command: &str, what: &str) {
        if let Some(total) = total.filter(|t| *t > shown as u64) {
            println!("({shown} of {total} shown; netsend {command} --all for every {what})");
        }
    }
}

/// `--since TIME` as Unix ms.
pub(crate) fn parse_since(text: &str) -> Result<i64, Failure> {
    let now = netsend_service::store::now_ms();
    netsend_control::since::parse_since(text, now)
        .map_err(|e| Failure::new(NetApiStatus::ERROR_INVALID_PARAMETER, e.to_string()))
}

/// The receipts of a sent record, as `shown ..., read ...` (empty when none).
fn receipts(r: &SentRecord) -> String {
    let mut out = String::new();
    if let Some(t) = r.shown_at {
        out.push_str(&format!(", shown {} UTC", when(t)));
    }
    if let Some(t) = r.read_at {
        out.push_str(&format!(", read {} UTC", when(t)));
    }
    out
}

/// One line of `netsend sent` (root sees the sending user first).
fn print_sent_line(r: &SentRecord, with_owner: bool) {
    let owner = if with_owner {
        format!("{:<10} ", clean(&r.owner))
    } else {
        String::new()
    };
    let address = if r.address.is_empty() || r.address.eq_ignore_ascii_case(&r.to) {
        String::new()
    } else {
        format!(" ({})", clean(&r.address))
    };
    println!(
        "{:>5}  {} UTC  {owner}{} -> {}{address}  [{}{}]  {}",
        r.id,
        when(r.sent_at),
        clean(&r.from),
        clean(&r.to),
        match r.kind {
            SentKind::Directed => clean(&r.outcome),
            SentKind::Broadcast => format!("broadcast, {}", clean(&r.outcome)),
            SentKind::Users => format!("/USERS, {}", clean(&r.outcome)),
            SentKind::Queued => format!("via queue, {}", clean(&r.outcome)),
            SentKind::Automatic => format!("automatic answer, {}", clean(&r.outcome)),
        },
        receipts(r),
        sanitize_first_line(&r.text)
    );
}

/// `netsend sent`: the newest records of the archive (or all), oldest
/// first, paged from the service.
pub(crate) async fn sent(
    config: &ClientConfig,
    json: bool,
    search: Option<String>,
    to: Option<String>,
    shown: Shown,
) -> Result<(), Failure> {
    let mut records: Vec<SentRecord> = Vec::new();
    let mut total = None;
    let (mut after_id, mut before_id) = (None, None);
    loop {
        let limit = match shown.count {
            Some(n) => (n - records.len()).min(MAX_PAGE),
            None => MAX_PAGE,
        };
        if limit == 0 {
            break;
        }
        let request = Request::SentList {
            after_id,
            before_id,
            limit,
            newest: shown.count.is_some(),
            search: search.clone(),
            to: to.clone(),
            since_ms: None,
            count: total.is_none(),
        };
        let (page, more, counted) = match call(config, request).await? {
            Response::SentList {
                records,
                more,
                total,
            } => (records, more, total),
            r => return Err(unexpected(r)),
        };
        total = total.or(counted);
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            break;
        };
        if shown.count.is_some() {
            before_id = Some(first.id);
            records.splice(0..0, page);
        } else {
            after_id = Some(last.id);
            records.extend(page);
        }
        if !more {
            break;
        }
    }
    if json {
        return print_json(&records);
    }
    if records.is_empty() {
        println!("You have sent no messages.");
    }
    let with_owner = records.iter().any(|r| r.owner != records[0].owner);
    for r in &records {
        print_sent_line(r, with_owner);
    }
    shown.footer(records.len(), total, "sent", "record");
    Ok(())
}

/// `netsend inbox --with NAME`: what came from NAME and went to NAME, in
/// time order, `<` received and `>` sent.
pub(crate) async fn thread(
    config: &ClientConfig,
    json: bool,
    with: &str,
    shown: Shown,
) -> Result<(), Failure> {
    let mut entries: Vec<ThreadEntry> = Vec::new();
    let (mut received_before, mut sent_before) = (None, None);
    let mut total = 0;
    loop {
        let limit = match shown.count {
            Some(n) => (n - entries.len()).min(MAX_PAGE),
            None => MAX_PAGE,
        };
        if limit == 0 {
            break;
        }
        let request = Request::Thread {
            with: with.to_owned(),
            limit,
            received_before,
            sent_before,
        };
        let (page, more, all) = match call(config, request).await? {
            Response::Thread {
                entries,
                more,
                total,
            } => (entries, more, total),
            r => return Err(unexpected(r)),
        };
        total = all;
        if page.is_empty() {
            break;
        }
        for e in &page {
            match e {
                ThreadEntry::Received(m) => {
                    received_before = Some(received_before.map_or(m.id, |b: i64| b.min(m.id)));
                }
                ThreadEntry::Sent(s) => {
                    sent_before = Some(sent_before.map_or(s.id, |b: i64| b.min(s.id)));
                }
            }
        }
        entries.splice(0..0, page);
        if !more {
            break;
        }
    }
    if json {
        return print_json(&entries);
    }
    if entries.is_empty() {
        println!("No messages from or to {}.", clean(with));
    }
    for e in &entries {
        match e {
            ThreadEntry::Received(m) => {
                print!("<");
                print_message_line(m);
            }
            ThreadEntry::Sent(r) => {
                print!(">");
                print_sent_line(r, false);
            }
        }
    }
    shown.footer(
        entries.len(),
        Some(total),
        &format!("inbox --with {}", clean(with)),
        "message",
    );
    if let Some(ThreadEntry::Received(m)) = entries
        .iter()
        .rev()
        .find(|e| matches!(e, ThreadEntry::Received(_)))
    {
        println!("{}", reply_hint(m.id));
    }
    Ok(())
}

/// `netsend reply ID TEXT...`.
pub(crate) async fn reply(
    config: &ClientConfig,
    id: i64,
    words: Vec<String>,
) -> Result<(), Failure> {
    let text = message_text(words, "netsend reply ID message words...")?;
    let answer = call(config, Request::Reply { id, text })
        .await
        .map_err(|f| {
            f.hint_if(
                NetApiStatus::ERROR_INVALID_PARAMETER,
                "`netsend inbox` lists your messages with their IDs",
            )
        })?;
    match answer {
        Response::Replied(report) => {
            if let Some(why) = &report.fallback {
                eprintln!(
                    "netsend: {}; the reply went to the computer name {} at {} instead",
                    clean(why),
                    clean(&report.sent.to),
                    clean(&report.sent.address)
                );
            }
            println!(
                "The reply was successfully sent to {} ({}).",
                clean(&report.sent.to),
                clean(&report.sent.address)
            );
            if let Some(id) = report.sent.receipt_id {
                println!("Receipts (from a netsend recipient): netsend status {id}");
            }
            Ok(())
        }
        r => Err(unexpected(r)),
    }
}

/// How an away state reads: `away since ... UTC: TEXT`.
pub(crate) fn away_line(away: &AwayState) -> String {
    format!(
        "{} is away since {} UTC: {}",
        clean(&away.user),
        when(away.since),
        sanitize_first_line(&away.text)
    )
}

/// `netsend away TEXT...`, `netsend away off`, `netsend away`.
pub(crate) async fn away(config: &ClientConfig, words: Vec<String>) -> Result<(), Failure> {
    let request = match words.as_slice() {
        [] => Request::Away,
        [off] if off.eq_ignore_ascii_case("off") => Request::AwaySet { text: None },
        _ => Request::AwaySet {
            text: Some(words.join(" ")),
        },
    };
    let setting = !matches!(request, Request::Away);
    match call(config, request).await? {
        Response::Away { state: Some(state) } => {
            println!("{}", away_line(&state));
            if setting {
                println!(
                    "Each sender gets one automatic answer per hour; `netsend away off` ends it."
                );
            }
            Ok(())
        }
        Response::Away { state: None } if setting => {
            println!("You are back: no more automatic answers.");
            Ok(())
        }
        Response::Away { state: None } => {
            println!("You are not away.");
            Ok(())
        }
        r => Err(unexpected(r)),
    }
}
