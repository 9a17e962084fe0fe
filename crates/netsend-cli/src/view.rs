//! `netsend view`: the browse list, printed like NET VIEW. Every string a
//! peer announced is sanitised before it is printed.

use netsend_control::config::ClientConfig;
use netsend_control::types::{BrowseHost, MessengerState};
use netsend_control::{Request, Response};
use netsend_proto::display::sanitize_name as clean;
use netsend_wire::name::suffix;

use crate::cmd::{call, print_json, unexpected};
use crate::Failure;

/// NET VIEW's rule line.
const RULE: &str =
    "-------------------------------------------------------------------------------";
/// NET VIEW's last line.
const DONE: &str = "The command completed successfully.";

/// What `netsend view` was asked to show.
pub(crate) enum Target {
    /// The hosts of our workgroup, or of `Some(domain)`.
    Hosts(Option<String>),
    /// The workgroups heard.
    Domains,
    /// One host's message names.
    Host(String),
}

impl Target {
    /// From the arguments: `\\HOST`, `--domain` (`None`: not given,
    /// `Some("")`: the workgroup list, `Some(NAME)`: NAME's hosts).
    pub(crate) fn from_args(host: Option<String>, domain: Option<String>) -> Self {
        match (host, domain) {
            (Some(h), _) => Self::Host(h.trim_start_matches(['\\', '/']).to_owned()),
            (None, Some(d)) if d.is_empty() => Self::Domains,
            (None, d) => Self::Hosts(d),
        }
    }
}

/// Runs `netsend view`.
pub(crate) async fn view(
    config: &ClientConfig,
    target: Target,
    json: bool,
    names_only: bool,
) -> Result<(), Failure> {
    let request = match target {
        Target::Hosts(domain) => Request::View { domain },
        Target::Domains => Request::ViewDomains,
        Target::Host(host) => Request::ViewHost { host },
    };
    match call(config, request).await? {
        Response::Hosts { hosts, .. } if names_only => {
            for name in send_names(&hosts) {
                println!("{name}");
            }
            Ok(())
        }
        Response::Hosts { hosts, .. } if json => print_json(&hosts),
        Response::Hosts { hosts, .. } => {
            print_hosts(&hosts);
            Ok(())
        }
        Response::Domains { domains } if json => print_json(&domains),
        Response::Domains { domains } => {
            println!("{:<23}Master browser", "Domain");
            println!();
            println!("{RULE}");
            for d in &domains {
                println!("{:<23}{}", clean(&d.name), clean(&d.master));
            }
            println!("{DONE}");
            Ok(())
        }
        Response::HostNames {
            host,
            address,
            names,
        } => {
            if json {
                return print_json(&serde_json::json!({
                    "host": host,
                    "address": address,
                    "names": names,
                }));
            }
            println!(
                "Message names at \\\\{} ({})",
                clean(&host),
                clean(&address)
            );
            println!();
            println!("{RULE}");
            let message_names: Vec<_> = names
                .iter()
                .filter(|n| n.suffix == suffix::MESSENGER && !n.group)
                .collect();
            if message_names.is_empty() {
                println!("There are no entries in the list.");
            }
            for n in message_names {
                println!("{}", clean(&n.name));
            }
            println!("{DONE}");
            Ok(())
        }
        r => Err(unexpected(r)),
    }
}

/// The names `netsend send` may be completed with: each host, and each of
/// the message names it holds, once, sanitised.
fn send_names(hosts: &[BrowseHost]) -> Vec<String> {
    let mut names: Vec<String> = hosts
        .iter()
        .flat_map(|h| std::iter::once(&h.name).chain(&h.messenger_names))
        .map(|n| clean(n))
        .filter(|n| !n.is_empty() && !n.contains(char::is_whitespace))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The host table: name, remark, and whether it runs a messenger.
fn print_hosts(hosts: &[BrowseHost]) {
    println!("{:<23}{:<44}Messenger", "Server Name", "Remark");
    println!();
    println!("{RULE}");
    if hosts.is_empty() {
        println!("There are no entries in the list.");
    }
    for h in hosts {
        let mark = match h.messenger {
            MessengerState::Yes => "yes",
            MessengerState::No => "no",
            MessengerState::NoAnswer | MessengerState::Unknown => "?",
        };
        let name = format!("\\\\{}", clean(&h.name));
        println!("{name:<23}{:<44}{mark}", clean(&h.comment));
    }
    println!("{DONE}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, messenger_names: &[&str]) -> BrowseHost {
        BrowseHost {
            name: name.into(),
            comment: String::new(),
            server_type: 1,
            os_version: (6, 1),
            address: "192.0.2.1".into(),
            messenger: MessengerState::Yes,
            messenger_names: messenger_names.iter().map(|s| s.to_string()).collect(),
            expires_in_secs: 60,
        }
    }

    #[test]
    fn completion_names_are_the_hosts_and_their_message_names() {
        let hosts = [
            host("ALPHA", &["ALPHA", "ALICE"]),
            host("EVIL\u{1b}[2J", &["TWO WORDS"]),
        ];
        // The escape sequence is taken out, a name with a space left out.
        assert_eq!(send_names(&hosts), ["ALICE", "ALPHA", "EVIL"]);
    }

    #[test]
    fn arguments_pick_the_target() {
        assert!(matches!(Target::from_args(None, None), Target::Hosts(None)));
        assert!(matches!(
            Target::from_args(None, Some(String::new())),
            Target::Domains
        ));
        assert!(matches!(
            Target::from_args(None, Some("LAB".into())),
            Target::Hosts(Some(d)) if d == "LAB"
        ));
        assert!(matches!(
            Target::from_args(Some("\\\\HOST".into()), None),
            Target::Host(h) if h == "HOST"
        ));
    }
}
