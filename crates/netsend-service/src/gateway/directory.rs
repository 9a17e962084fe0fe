//! The directory of names held at other sites: which site holds a name,
//! the owner's address there, and that site's gateway. In memory and
//! bounded; the KV bucket of names fills it.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use netsend_proto::sites::SiteName;
use netsend_wire::name::NetbiosName;

/// Most names the directory holds; past it, new names are not added (the
/// names already known stay and are updated).
pub(crate) const MAX_NAMES: usize = 65_536;

/// Where a name held at another site lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteName {
    /// The site that holds it.
    pub(crate) site: SiteName,
    /// The owner's address at its site.
    pub(crate) address: Ipv4Addr,
    /// That site's gateway address.
    pub(crate) gateway: Ipv4Addr,
}

/// The names held at other sites (cheap to clone; one table inside).
#[derive(Debug, Clone, Default)]
pub(crate) struct Directory {
    names: Arc<Mutex<HashMap<NetbiosName, RemoteName>>>,
}

impl Directory {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<NetbiosName, RemoteName>> {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where `name` lives, if another site holds it.
    pub(crate) fn lookup(&self, name: &NetbiosName) -> Option<RemoteName> {
        self.table().get(name).cloned()
    }

    /// Records (or updates) that `remote` holds `name`; a new name is
    /// dropped when the table holds [`MAX_NAMES`] already.
    pub(crate) fn upsert(&self, name: NetbiosName, remote: RemoteName) {
        let mut table = self.table();
        if table.len() >= MAX_NAMES && !table.contains_key(&name) {
            return;
        }
        table.insert(name, remote);
    }

    /// Forgets `name`.
    pub(crate) fn remove(&self, name: &NetbiosName) {
        self.table().remove(name);
    }

    /// Every site with names in the directory and how many, by site name.
    pub(crate) fn sites(&self) -> Vec<(SiteName, usize)> {
        let mut counts: BTreeMap<SiteName, usize> = BTreeMap::new();
        for remote in self.table().values() {
            *counts.entry(remote.site.clone()).or_default() += 1;
        }
        counts.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Directory {
        fn len(&self) -> usize {
            self.sites().iter().map(|(_, n)| n).sum()
        }
    }

    fn remote(site: &str, last: u8) -> RemoteName {
        RemoteName {
            site: SiteName::new(site).unwrap(),
            address: Ipv4Addr::new(192, 0, 2, last),
            gateway: Ipv4Addr::new(192, 0, 2, 1),
        }
    }

    fn name(text: &str) -> NetbiosName {
        NetbiosName::new(text, 3).unwrap()
    }

    #[test]
    fn names_are_found_updated_and_removed() {
        let d = Directory::default();
        assert_eq!(d.lookup(&name("alice")), None);
        d.upsert(name("alice"), remote("north", 10));
        d.upsert(name("bob"), remote("north", 11));
        d.upsert(name("carol"), remote("south", 12));
        assert_eq!(d.lookup(&name("alice")), Some(remote("north", 10)));
        // A clone is the same table.
        let other = d.clone();
        other.upsert(name("alice"), remote("south", 20));
        assert_eq!(d.lookup(&name("alice")), Some(remote("south", 20)));
        assert_eq!(
            d.sites(),
            [
                (SiteName::new("NORTH").unwrap(), 1),
                (SiteName::new("SOUTH").unwrap(), 2)
            ]
        );
        d.remove(&name("alice"));
        assert_eq!(d.lookup(&name("alice")), None);
        assert_eq!(d.len(), 2);
        // The suffix is part of the name.
        assert_eq!(d.lookup(&name("bob").with_suffix(0x20)), None);
    }

    #[test]
    fn the_table_is_bounded_but_known_names_still_update() {
        let d = Directory::default();
        for i in 0..MAX_NAMES {
            let mut raw = [b' '; 16];
            raw[..8].copy_from_slice(format!("{i:08}").as_bytes());
            d.upsert(NetbiosName::from_raw(raw), remote("north", 1));
        }
        assert_eq!(d.len(), MAX_NAMES);
        d.upsert(name("late"), remote("north", 2));
        assert_eq!(d.lookup(&name("late")), None);
        let mut raw = [b' '; 16];
        raw[..8].copy_from_slice(b"00000007");
        d.upsert(NetbiosName::from_raw(raw), remote("south", 3));
        assert_eq!(
            d.lookup(&NetbiosName::from_raw(raw)),
            Some(remote("south", 3))
        );
        assert_eq!(d.len(), MAX_NAMES);
    }
}
