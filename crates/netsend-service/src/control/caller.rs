//! Who is asking, and what they may do: every authorisation rule of the
//! control path in one place.

use crate::control::ControlError;

/// Who is calling: from the control socket's peer credentials, or a
/// principal of the remote-call channel.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The caller's uid (0 for root and for remote administrators).
    pub(crate) uid: u32,
    /// The caller's primary gid.
    pub(crate) gid: u32,
    /// The caller's user name; `None` for root, who sees everything.
    pub(crate) user: Option<String>,
    /// The caller's name for display even when root.
    pub(crate) login: String,
}

impl Caller {
    /// A local caller with these credentials; the name is the account's, or
    /// `uidN` for a uid without one.
    pub(crate) fn local(uid: u32, gid: u32) -> Self {
        let login = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid{uid}"), |u| u.name);
        Self::named(uid, gid, login)
    }

    /// A caller `login` with these credentials (no account lookup).
    pub(crate) fn named(uid: u32, gid: u32, login: String) -> Self {
        let user = (uid != 0).then(|| login.clone());
        Self {
            uid,
            gid,
            user,
            login,
        }
    }

    /// A principal of the remote-call channel (an administrator or server
    /// operator of this host), who may do what root may do here.
    pub(crate) fn remote(principal: &str) -> Self {
        Self::named(0, 0, principal.to_owned())
    }

    /// Whether the caller is root (or a remote administrator).
    pub(crate) fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Root and the service's own user may stop the service.
    pub(crate) fn may_stop(&self) -> Result<(), ControlError> {
        if self.is_root() || self.uid == nix::unistd::geteuid().as_raw() {
            Ok(())
        } else {
            Err(ControlError::MayNotStop)
        }
    }

    /// Root, and members of the configured `group` (by membership or as
    /// primary group), may send `*`, `/DOMAIN` and `/USERS` (`what` names
    /// the refused act).
    pub(crate) fn may_send_to_many(
        &self,
        group: &str,
        what: &'static str,
    ) -> Result<(), ControlError> {
        if self.is_root() || self.in_group(group) {
            Ok(())
        } else {
            Err(ControlError::NotInGroup {
                group: group.to_owned(),
                what,
            })
        }
    }

    /// Whether the caller is a member of `group` (by membership or as
    /// primary group).
    fn in_group(&self, group: &str) -> bool {
        match nix::unistd::Group::from_name(group) {
            Ok(Some(g)) => g.mem.iter().any(|m| m == &self.login) || self.gid == g.gid.as_raw(),
            _ => false,
        }
    }

    /// Root, and members of any of `groups` (`[alerter] groups`), may raise
    /// alerts.
    pub(crate) fn may_raise_alerts(&self, groups: &[String]) -> Result<(), ControlError> {
        if self.is_root() || groups.iter().any(|g| self.in_group(g)) {
            Ok(())
        } else {
            Err(ControlError::MayNotAlert {
                groups: groups.join(", "),
            })
        }
    }

    /// An ordinary user may not add an alias that is the login name of
    /// another account on this host (`alias` upper case, as aliases are;
    /// `typed` as the caller wrote it): an account named like it in lower
    /// case, upper case or as written.
    pub(crate) fn may_add_alias(&self, alias: &str, typed: &str) -> Result<(), ControlError> {
        let Some(user) = &self.user else {
            return Ok(());
        };
        let other = [
            alias.to_lowercase(),
            alias.to_owned(),
            typed.trim().to_owned(),
        ]
        .iter()
        .filter_map(|candidate| nix::unistd::User::from_name(candidate).ok().flatten())
        .map(|account| account.name)
        .find(|account| account != user);
        match other {
            None => Ok(()),
            Some(account) => Err(ControlError::LoginName {
                alias: typed.to_uppercase(),
                account,
            }),
        }
    }

    /// The sender name and text to send. Root may claim any sender name;
    /// anyone else who claims a name other than their own sends as
    /// themselves, and the text says who they claimed to be.
    pub(crate) fn sender_identity(
        &self,
        claimed: Option<String>,
        text: String,
    ) -> (String, String) {
        match claimed {
            None => (self.login.clone(), text),
            Some(name) if self.is_root() || name.eq_ignore_ascii_case(&self.login) => (name, text),
            Some(name) => (
                self.login.clone(),
                format!("(claims to be {name}, sent by uid {})\n{text}", self.uid),
            ),
        }
    }

    /// Whose sent records the caller sees: their own, or everyone's (root).
    pub(crate) fn sent_owner(&self) -> Option<&str> {
        self.user.as_deref().map(|_| self.login.as_str())
    }
}
