//! The message alias table: the computer name, logged-in users and added aliases.
//!
//! Every alias is the NetBIOS name `ALIAS<03>`. Aliases added with
//! `netsend name ALIAS /add` are persisted in `aliases.toml` in the state directory;
//! the computer name and user names are derived at start-up and are not stored.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use netsend_proto::display::LogSafe;
use netsend_wire::name::suffix;
use netsend_wire::status::NetApiStatus;
use netsend_wire::{CodePage, NetbiosName};
use serde::{Deserialize, Serialize};

use crate::config::{MAX_ALIASES, MAX_ALIASES_PER_USER};

pub use netsend_control::types::{Alias, AliasKind};

/// Notices kept for one user until their next `netsend name` (oldest dropped).
const MAX_NOTICES_PER_USER: usize = 16;

/// The alias table with its persistence file.
#[derive(Debug)]
pub struct AliasTable {
    code_page: CodePage,
    path: PathBuf,
    aliases: Vec<(NetbiosName, Alias)>,
    local_addresses: Vec<Ipv4Addr>,
    max_aliases: usize,
    max_per_user: usize,
    /// Notices for users about their aliases, shown at their next
    /// `netsend name`.
    notices: Vec<StoredNotice>,
    /// Forwarded aliases (upper case) and the host each goes to.
    forwards: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AliasFile {
    #[serde(default)]
    alias: Vec<StoredAlias>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    forward: Vec<StoredForward>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    notice: Vec<StoredNotice>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredNotice {
    user: String,
    text: String,
}

/// An added alias that went to the account of the same name when its owner
/// logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    /// The alias.
    pub name: NetbiosName,
    /// Who had added it.
    pub holder: Option<String>,
    /// The account that logged in.
    pub user: String,
}

/// What [`AliasTable::sync_users`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UserSync {
    /// Names that became ours (new logins).
    pub added: Vec<NetbiosName>,
    /// Names we no longer hold (logouts).
    pub removed: Vec<NetbiosName>,
    /// Added aliases that went to the account of that name (still ours on
    /// the network, now for another user).
    pub reclaimed: Vec<Reclaimed>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredForward {
    name: String,
    host: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredAlias {
    name: String,
    owner: Option<String>,
}

impl AliasTable {
    /// Builds the table from the computer name and the aliases stored in
    /// `state_dir/aliases.toml` (a missing file means none were added).
    pub fn load(
        computer_name: &str,
        state_dir: &Path,
        code_page: CodePage,
    ) -> Result<Self, std::io::Error> {
        let computer = NetbiosName::with_code_page(computer_name, suffix::MESSENGER, code_page)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let path = state_dir.join("aliases.toml");
        let mut table = Self {
            code_page,
            path,
            aliases: vec![(
                computer,
                Alias {
                    name: computer.to_text(code_page),
                    kind: AliasKind::Computer,
                    owner: None,
                },
            )],
            local_addresses: Vec::new(),
            max_aliases: MAX_ALIASES,
            max_per_user: MAX_ALIASES_PER_USER,
            notices: Vec::new(),
            forwards: Default::default(),
        };
        let stored: AliasFile = match std::fs::read_to_string(&table.path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", table.path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AliasFile::default(),
            Err(e) => return Err(e),
        };
        table.notices = stored.notice;
        for f in stored.forward {
            table.forwards.insert(f.name.to_uppercase(), f.host);
        }
        for a in stored.alias {
            if let Ok(name) = NetbiosName::with_code_page(&a.name, suffix::MESSENGER, code_page) {
                if table.find(&name).is_none() {
                    table.aliases.push((
                        name,
                        Alias {
                            name: name.to_text(code_page),
                            kind: AliasKind::Added,
                            owner: a.owner,
                        },
                    ));
                }
            }
        }
        Ok(table)
    }

    /// Records the host's own IPv4 addresses: a message addressed to one of them
    /// as text (`smbclient -M 192.0.2.10`) goes to the computer name.
    pub fn set_local_addresses(&mut self, addresses: Vec<Ipv4Addr>) {
        self.local_addresses = addresses;
    }

    /// Sets the most aliases held (at least the computer name and one more).
    pub fn set_max_aliases(&mut self, max: usize) {
        self.max_aliases = max.max(2);
    }

    /// Sets the most aliases one user other than root may add (at least one).
    pub fn set_max_aliases_per_user(&mut self, max: usize) {
        self.max_per_user = max.max(1);
    }

    /// The computer name as `NAME<03>`.
    pub fn computer_name(&self) -> NetbiosName {
        self.aliases[0].0
    }

    /// Every alias, computer name first.
    pub fn list(&self) -> impl Iterator<Item = &Alias> {
        self.aliases.iter().map(|(_, a)| a)
    }

    /// Every alias as a NetBIOS name `<03>`.
    pub fn names(&self) -> impl Iterator<Item = NetbiosName> + '_ {
        self.aliases.iter().map(|(n, _)| *n)
    }

    /// The alias a `NAME<03>` (or any suffix) refers to.
    pub fn find(&self, name: &NetbiosName) -> Option<&Alias> {
        let wanted = name.with_suffix(suffix::MESSENGER);
        self.aliases
            .iter()
            .find(|(n, _)| *n == wanted)
            .map(|(_, a)| a)
    }

    /// Resolves the destination of an incoming message to one of our aliases:
    /// an alias (`<03>`), the computer name with any suffix, `*SMBSERVER`, or one
    /// of our addresses written as text.
    pub fn resolve_destination(&self, name: &NetbiosName) -> Option<&Alias> {
        if let Some(alias) = self.find(name) {
            return Some(alias);
        }
        let text = String::from_utf8_lossy(name.trimmed()).into_owned();
        let is_smbserver = text == "*SMBSERVER" || text == "*SMBSERV";
        let is_our_address = text
            .parse::<Ipv4Addr>()
            .is_ok_and(|ip| self.local_addresses.contains(&ip) || ip.is_loopback());
        (is_smbserver || is_our_address).then(|| &self.aliases[0].1)
    }

    /// Whether a session may be opened to `called`: one of our `<03>` aliases,
    /// the computer name with any suffix, `*SMBSERVER<20>` or one of our addresses.
    pub fn accepts_called_name(&self, called: &NetbiosName) -> bool {
        let computer = self.computer_name();
        called.padded() == computer.padded()
            || (called.suffix() == suffix::MESSENGER && self.find(called).is_some())
            || self.resolve_destination(called).is_some()
    }

    /// The alias `text` stands for, as shown (upper case): what [`Self::add`]
    /// would add.
    pub fn alias_text(&self, text: &str) -> Result<String, NetApiStatus> {
        NetbiosName::with_code_page(text, suffix::MESSENGER, self.code_page)
            .map(|n| n.to_text(self.code_page))
            .map_err(|_| NetApiStatus::ERROR_INVALID_PARAMETER)
    }

    /// How many aliases `user` added and holds.
    pub fn added_by(&self, user: &str) -> usize {
        self.aliases
            .iter()
            .filter(|(_, a)| a.kind == AliasKind::Added && a.owner.as_deref() == Some(user))
            .count()
    }

    /// Adds an alias owned by `owner`; persisted at once. Unless `by_root`,
    /// the owner may hold at most `max_aliases_per_user` added aliases.
    pub fn add(
        &mut self,
        text: &str,
        owner: Option<String>,
        by_root: bool,
    ) -> Result<Alias, NetApiStatus> {
        let name = NetbiosName::with_code_page(text, suffix::MESSENGER, self.code_page)
            .map_err(|_| NetApiStatus::ERROR_INVALID_PARAMETER)?;
        if self.find(&name).is_some() {
            return Err(NetApiStatus::NERR_ALREADY_EXISTS);
        }
        let over_user_cap = owner
            .as_deref()
            .is_some_and(|o| self.added_by(o) >= self.max_per_user);
        if self.aliases.len() >= self.max_aliases || (!by_root && over_user_cap) {
            return Err(NetApiStatus::NERR_TOO_MANY_NAMES);
        }
        let alias = Alias {
            name: name.to_text(self.code_page),
            kind: AliasKind::Added,
            owner,
        };
        self.aliases.push((name, alias.clone()));
        if let Err(e) = self.save() {
            self.aliases.pop();
            tracing::error!(error = %LogSafe(&e), "cannot persist the alias table");
            return Err(NetApiStatus::NERR_INTERNAL_ERROR);
        }
        Ok(alias)
    }

    /// Makes the user aliases match the users logged in now: adds a `User` alias
    /// for each new user (unless they hold that name already) and removes the
    /// `User` aliases of users who left. An alias someone else added under a
    /// logged-in user's name goes to that user: the account's owner comes
    /// first. Its holder gets a notice (see [`Self::take_notices`]); the change
    /// is persisted.
    pub fn sync_users(&mut self, users: &[String]) -> UserSync {
        let mut sync = UserSync::default();
        self.aliases.retain(|(n, a)| {
            let keep =
                a.kind != AliasKind::User || a.owner.as_ref().is_some_and(|o| users.contains(o));
            if !keep {
                sync.removed.push(*n);
            }
            keep
        });
        for user in users {
            let Ok(name) = NetbiosName::with_code_page(user, suffix::MESSENGER, self.code_page)
            else {
                continue;
            };
            let held = self.aliases.iter().position(|(n, _)| *n == name);
            if let Some(i) = held {
                let alias = &self.aliases[i].1;
                if alias.kind != AliasKind::Added || alias.owner.as_ref() == Some(user) {
                    continue;
                }
                let (_, taken) = self.aliases.remove(i);
                self.forwards.remove(&taken.name.to_uppercase());
                if let Some(holder) = &taken.owner {
                    self.notify(
                        holder,
                        format!(
                            "your alias {} was removed at {}: the account {user} logged in, and an account's owner comes first",
                            taken.name,
                            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
                        ),
                    );
                }
                sync.reclaimed.push(Reclaimed {
                    name,
                    holder: taken.owner,
                    user: user.clone(),
                });
            } else if self.aliases.len() >= self.max_aliases {
                continue;
            } else {
                sync.added.push(name);
            }
            self.aliases.push((
                name,
                Alias {
                    name: name.to_text(self.code_page),
                    kind: AliasKind::User,
                    owner: Some(user.clone()),
                },
            ));
        }
        if !sync.reclaimed.is_empty() {
            if let Err(e) = self.save() {
                tracing::error!(error = %LogSafe(&e), "cannot persist the alias table");
            }
        }
        sync
    }

    /// Keeps `text` for `user`'s next `netsend name` (the last
    /// [`MAX_NOTICES_PER_USER`] per user).
    fn notify(&mut self, user: &str, text: String) {
        let theirs = self.notices.iter().filter(|n| n.user == user).count();
        if theirs >= MAX_NOTICES_PER_USER {
            if let Some(i) = self.notices.iter().position(|n| n.user == user) {
                self.notices.remove(i);
            }
        }
        self.notices.push(StoredNotice {
            user: user.to_owned(),
            text,
        });
    }

    /// The notices kept for `user`, oldest first; they are removed (and the
    /// removal persisted), so each is shown once.
    pub fn take_notices(&mut self, user: &str) -> Vec<String> {
        if !self.notices.iter().any(|n| n.user == user) {
            return Vec::new();
        }
        let (theirs, others) = std::mem::take(&mut self.notices)
            .into_iter()
            .partition::<Vec<_>, _>(|n| n.user == user);
        self.notices = others;
        if let Err(e) = self.save() {
            tracing::error!(error = %LogSafe(&e), "cannot persist the alias table");
        }
        theirs.into_iter().map(|n| n.text).collect()
    }

    /// Deletes an alias. The computer name cannot be deleted
    /// (NERR_DelComputerName); a user other than root may delete only aliases
    /// they own (`requester` is `None` for root).
    pub fn delete(&mut self, text: &str, requester: Option<&str>) -> Result<Alias, NetApiStatus> {
        let name = NetbiosName::with_code_page(text, suffix::MESSENGER, self.code_page)
            .map_err(|_| NetApiStatus::ERROR_INVALID_PARAMETER)?;
        let index = self
            .aliases
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or(NetApiStatus::NERR_NOT_LOCAL_NAME)?;
        let alias = &self.aliases[index].1;
        if alias.kind == AliasKind::Computer {
            return Err(NetApiStatus::NERR_DEL_COMPUTER_NAME);
        }
        if let Some(user) = requester {
            if alias.owner.as_deref() != Some(user) {
                return Err(NetApiStatus::ERROR_ACCESS_DENIED);
            }
        }
        let removed = self.aliases.remove(index);
        let forward = self.forwards.remove(&removed.1.name.to_uppercase());
        if let Err(e) = self.save() {
            if let Some(host) = forward {
                self.forwards.insert(removed.1.name.to_uppercase(), host);
            }
            self.aliases.insert(index, removed);
            tracing::error!(error = %LogSafe(&e), "cannot persist the alias table");
            return Err(NetApiStatus::NERR_INTERNAL_ERROR);
        }
        Ok(removed.1)
    }

    /// The host messages to `alias` are forwarded to, if any.
    pub fn forward_of(&self, alias: &str) -> Option<&str> {
        self.forwards
            .get(&alias.trim().to_uppercase())
            .map(String::as_str)
    }

    /// Forwards an alias to `host` (`None`: cancels its forward); persisted
    /// at once. Only the alias's owner or root (`requester` `None`) may, and
    /// only root for the computer name. The target is checked by the caller.
    pub fn set_forward(
        &mut self,
        text: &str,
        host: Option<String>,
        requester: Option<&str>,
    ) -> Result<Alias, NetApiStatus> {
        let name = NetbiosName::with_code_page(text, suffix::MESSENGER, self.code_page)
            .map_err(|_| NetApiStatus::ERROR_INVALID_PARAMETER)?;
        let alias = self
            .find(&name)
            .cloned()
            .ok_or(NetApiStatus::NERR_NOT_LOCAL_NAME)?;
        if let Some(user) = requester {
            if alias.owner.as_deref() != Some(user) || alias.kind == AliasKind::Computer {
                return Err(NetApiStatus::ERROR_ACCESS_DENIED);
            }
        }
        let key = alias.name.to_uppercase();
        let previous = match host {
            Some(host) => self.forwards.insert(key.clone(), host),
            None => self.forwards.remove(&key),
        };
        if let Err(e) = self.save() {
            match previous {
                Some(p) => self.forwards.insert(key, p),
                None => self.forwards.remove(&key),
            };
            tracing::error!(error = %LogSafe(&e), "cannot persist the alias table");
            return Err(NetApiStatus::NERR_INTERNAL_ERROR);
        }
        Ok(alias)
    }

    /// Writes the added aliases atomically (temp file + rename).
    fn save(&self) -> std::io::Result<()> {
        let file = AliasFile {
            alias: self
                .aliases
                .iter()
                .filter(|(_, a)| a.kind == AliasKind::Added)
                .map(|(_, a)| StoredAlias {
                    name: a.name.clone(),
                    owner: a.owner.clone(),
                })
                .collect(),
            forward: self
                .forwards
                .iter()
                .map(|(name, host)| StoredForward {
                    name: name.clone(),
                    host: host.clone(),
                })
                .collect(),
            notice: self.notices.clone(),
        };
        let text = toml::to_string(&file).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("toml.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_persist_and_follow_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = AliasTable::load("host1", dir.path(), CodePage::Cp850).unwrap();
        t.add("alice", Some("alice".into()), false).unwrap();
        assert_eq!(
            t.set_forward("alice", Some("HOST2".into()), Some("bob"))
                .unwrap_err(),
            NetApiStatus::ERROR_ACCESS_DENIED
        );
        assert_eq!(
            t.set_forward("host1", Some("HOST2".into()), Some("alice"))
                .unwrap_err(),
            NetApiStatus::ERROR_ACCESS_DENIED
        );
        assert_eq!(
            t.set_forward("nobody", Some("HOST2".into()), None)
                .unwrap_err(),
            NetApiStatus::NERR_NOT_LOCAL_NAME
        );
        t.set_forward("alice", Some("HOST2".into()), Some("alice"))
            .unwrap();
        let t2 = AliasTable::load("host1", dir.path(), CodePage::Cp850).unwrap();
        assert_eq!(t2.forward_of("Alice"), Some("HOST2"));
        t.set_forward("ALICE", None, None).unwrap();
        assert_eq!(t.forward_of("alice"), None);
        t.set_forward("alice", Some("HOST3".into()), None).unwrap();
        t.delete("alice", None).unwrap();
        let t3 = AliasTable::load("host1", dir.path(), CodePage::Cp850).unwrap();
        assert_eq!(t3.forward_of("alice"), None);
    }

    #[test]
    fn add_delete_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = AliasTable::load("host1", dir.path(), CodePage::Cp850).unwrap();
        assert_eq!(t.list().next().unwrap().name, "HOST1");
        t.add("alice", Some("alice".into()), false).unwrap();
        assert_eq!(
            t.add("ALICE", None, true),
            Err(NetApiStatus::NERR_ALREADY_EXISTS)
        );
        assert_eq!(
            t.delete("host1", None),
            Err(NetApiStatus::NERR_DEL_COMPUTER_NAME)
        );
        assert_eq!(
            t.delete("nobody", None),
            Err(NetApiStatus::NERR_NOT_LOCAL_NAME)
        );
        assert_eq!(
            t.delete("alice", Some("bob")),
            Err(NetApiStatus::ERROR_ACCESS_DENIED)
        );
        let t2 = AliasTable::load("host1", dir.path(), CodePage::Cp850).unwrap();
        assert_eq!(t2.list().count(), 2);
        t.delete("Alice", Some("alice")).unwrap();
        let t3 = AliasTable::load("host1", dir.path(), CodePage::Cp850).unwrap();
        assert_eq!(t3.list().count(), 1);
    }

    #[test]
    fn user_aliases_follow_logins() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = AliasTable::load("HOST1", dir.path(), CodePage::Cp850).unwrap();
        assert_eq!(
            t.sync_users(&["carol".into(), "dave".into()]).added.len(),
            2
        );
        assert_eq!(
            t.find(&NetbiosName::new("CAROL", 3).unwrap())
                .unwrap()
                .owner
                .as_deref(),
            Some("carol")
        );
        assert_eq!(
            t.sync_users(&["carol".into(), "dave".into()]),
            UserSync::default()
        );
        assert_eq!(
            t.sync_users(&["dave".into()]).removed,
            [NetbiosName::new("CAROL", 3).unwrap()]
        );
        assert!(t.find(&NetbiosName::new("carol", 3).unwrap()).is_none());
        // User aliases are not persisted.
        let t2 = AliasTable::load("HOST1", dir.path(), CodePage::Cp850).unwrap();
        assert_eq!(t2.list().count(), 1);
    }

    #[test]
    fn an_account_logging_in_takes_its_name_back_and_the_holder_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = AliasTable::load("HOST1", dir.path(), CodePage::Cp850).unwrap();
        t.add("bob", Some("mallory".into()), false).unwrap();
        t.set_forward("bob", Some("HOST9".into()), Some("mallory"))
            .unwrap();
        let sync = t.sync_users(&["bob".into()]);
        let bob = NetbiosName::new("BOB", 3).unwrap();
        assert_eq!(
            sync.reclaimed,
            [Reclaimed {
                name: bob,
                holder: Some("mallory".into()),
                user: "bob".into()
            }]
        );
        assert!(sync.added.is_empty() && sync.removed.is_empty());
        let alias = t.find(&bob).unwrap();
        assert_eq!(
            (alias.kind, alias.owner.as_deref()),
            (AliasKind::User, Some("bob"))
        );
        assert_eq!(t.forward_of("bob"), None);
        // Persisted: the squat is gone after a restart; the notice waits.
        let mut t2 = AliasTable::load("HOST1", dir.path(), CodePage::Cp850).unwrap();
        assert!(t2.find(&bob).is_none());
        assert!(t2.take_notices("bob").is_empty());
        let notices = t2.take_notices("mallory");
        assert_eq!(notices.len(), 1);
        assert!(notices[0].contains("BOB") && notices[0].contains("bob logged in"));
        assert!(t2.take_notices("mallory").is_empty());
        let mut t3 = AliasTable::load("HOST1", dir.path(), CodePage::Cp850).unwrap();
        assert!(t3.take_notices("mallory").is_empty());
        // A user's own added alias of their name stays as it is.
        t3.add("carol", Some("carol".into()), false).unwrap();
        assert_eq!(t3.sync_users(&["carol".into()]), UserSync::default());
        let carol = t3.find(&NetbiosName::new("CAROL", 3).unwrap()).unwrap();
        assert_eq!(carol.kind, AliasKind::Added);
    }

    #[test]
    fn one_user_adds_at_most_the_per_user_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = AliasTable::load("HOST1", dir.path(), CodePage::Cp850).unwrap();
        t.set_max_aliases_per_user(2);
        for name in ["a1", "a2"] {
            t.add(name, Some("mallory".into()), false).unwrap();
        }
        assert_eq!(
            t.add("a3", Some("mallory".into()), false),
            Err(NetApiStatus::NERR_TOO_MANY_NAMES)
        );
        // Others are not affected; root is not capped.
        t.add("b1", Some("bob".into()), false).unwrap();
        t.add("r1", Some("root".into()), true).unwrap();
        t.add("r2", Some("root".into()), true).unwrap();
        t.add("r3", Some("root".into()), true).unwrap();
        t.delete("a1", Some("mallory")).unwrap();
        t.add("a3", Some("mallory".into()), false).unwrap();
        assert_eq!(t.added_by("mallory"), 2);
    }

    #[test]
    fn destinations_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = AliasTable::load("HOST1", dir.path(), CodePage::Cp850).unwrap();
        t.set_local_addresses(vec!["192.0.2.10".parse().unwrap()]);
        let by_ip = NetbiosName::from_oem_lossy(b"192.0.2.10", 3);
        assert_eq!(
            t.resolve_destination(&by_ip).unwrap().kind,
            AliasKind::Computer
        );
        let other = NetbiosName::from_oem_lossy(b"192.0.2.99", 3);
        assert!(t.resolve_destination(&other).is_none());
        assert!(t.accepts_called_name(&NetbiosName::new("host1", 0x20).unwrap()));
        assert!(t.accepts_called_name(
            &NetbiosName::new("*SMBSERVER", 0x20)
                .unwrap_or(NetbiosName::from_oem_lossy(b"*SMBSERVER", 0x20))
        ));
        assert!(!t.accepts_called_name(&NetbiosName::new("bob", 3).unwrap()));
    }
}
