//! Who may hold a name: another Unix user cannot take a person's login
//! name, and a spoofed packet from another host cannot take our names off
//! the network.

use std::time::Duration;

use crate::harness::{have, is_root, require, stderr, stdout, Service, TestUsers};

/// `netsend name` as `user` (root when `None`): its output and its notices.
fn names_as(svc: &Service, user: Option<&str>) -> (String, String) {
    let out = match user {
        Some(u) => svc.cli_as(u, &["name"]),
        None => svc.cli(&["name"]),
    };
    assert!(out.status.success(), "{}", stderr(&out));
    (stdout(&out), stderr(&out))
}

/// The inbox `user` sees, as JSON values.
fn inbox_as(svc: &Service, user: &str) -> Vec<serde_json::Value> {
    let out = svc.cli_as(user, &["inbox", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn another_user_cannot_take_a_persons_login_name() {
    if !require(
        is_root() && have("useradd") && have("runuser"),
        "root, useradd and runuser (real test accounts)",
    ) {
        return;
    }
    let _accounts = TestUsers::create(&["nsqbob", "nsqmal"], None);
    let dir = tempfile::tempdir().unwrap();
    let utmp = dir.path().join("utmp");
    std::fs::write(&utmp, b"").unwrap();
    let top = format!("utmp_path = \"{}\"", utmp.display());
    let svc = Service::start("HOSTSQ", &top, "[limits]\nmax_aliases_per_user = 2\n");
    // Bob is logged out: mallory may not add his login name, in any case,
    // nor root's; nothing is added.
    for name in ["nsqbob", "NSQBOB", "NsqBob", "root"] {
        let out = svc.cli_as("nsqmal", &["name", name, "/add"]);
        let err = stderr(&out);
        assert!(
            !out.status.success() && err.contains("ERROR_ACCESS_DENIED (5)"),
            "{name}: {err}"
        );
        assert!(err.contains("only root may add it"), "{err}");
    }
    let (listed, _) = names_as(&svc, None);
    assert!(!listed.contains("NSQBOB"), "{listed}");
    // Her own login name and names of no account are hers to add; root
    // may add any.
    for name in ["nsqmal", "nsqlate"] {
        let out = svc.cli_as("nsqmal", &["name", name, "/add"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
    // The per-user cap (2 here): a third alias is refused, and others may
    // still add theirs.
    let out = svc.cli_as("nsqmal", &["name", "nsqfill", "/add"]);
    assert!(
        stderr(&out).contains("NERR_TooManyNames (2277)")
            && stderr(&out).contains("max_aliases_per_user"),
        "{}",
        stderr(&out)
    );
    let out = svc.cli_as("nsqbob", &["name", "nsqfill", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = svc.cli(&["name", "nsqroot1", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The account nsqlate is created after mallory added its name: until
    // its owner logs in, messages to NSQLATE are hers.
    let _late = TestUsers::create(&["nsqlate"], None);
    let out = svc.cli(&["send", "NSQLATE", "before the login"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = svc.wait_inbox(1);
    assert_eq!(stored[0]["recipient_user"], "nsqmal", "{stored:?}");
    // nsqlate logs in: the account's owner comes first.
    std::fs::write(
        &utmp,
        crate::local::utmp_record(std::process::id(), "pts/7", "nsqlate", ""),
    )
    .unwrap();
    let mut listed = String::new();
    for _ in 0..200 {
        listed = names_as(&svc, None).0;
        if listed
            .lines()
            .any(|l| l.starts_with("NSQLATE") && l.contains("nsqlate"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = listed
        .lines()
        .find(|l| l.starts_with("NSQLATE"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains("user") && line.contains("nsqlate") && !line.contains("nsqmal"),
        "{listed}"
    );
    let out = svc.cli(&["send", "NSQLATE", "for the owner"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = svc.wait_inbox(2);
    assert_eq!(stored[1]["recipient_user"], "nsqlate", "{stored:?}");
    let theirs = inbox_as(&svc, "nsqlate");
    assert!(
        theirs.iter().any(|m| m["text"] == "for the owner"),
        "{theirs:?}"
    );
    let hers = inbox_as(&svc, "nsqmal");
    assert!(
        !hers.iter().any(|m| m["text"] == "for the owner"),
        "{hers:?}"
    );
    // Mallory is told at her next `netsend name`, once; the service logged it.
    let (_, notes) = names_as(&svc, Some("nsqmal"));
    assert!(
        notes.contains("your alias NSQLATE was removed") && notes.contains("nsqlate logged in"),
        "{notes}"
    );
    assert!(!names_as(&svc, Some("nsqmal")).1.contains("NSQLATE"));
    let mut svc = svc;
    assert!(
        svc.log_text().contains("went to that account at its login"),
        "no log line"
    );
}
