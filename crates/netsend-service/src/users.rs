//! Logged-in users, read from utmp: each gets a message alias of their own name
//! while they have a live login session.

use std::path::Path;

use utmp_rs::UtmpEntry;

/// The distinct user names with a live login session in the utmp file at `path`
/// (an entry whose process no longer exists is stale and ignored). A missing or
/// unreadable file means nobody is logged in.
pub fn logged_in_users(path: &Path) -> Vec<String> {
    let Ok(entries) = utmp_rs::parse_from_path(path) else {
        return Vec::new();
    };
    let mut users: Vec<String> = Vec::new();
    for entry in entries {
        if let UtmpEntry::UserProcess { pid, user, .. } = entry {
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            if alive && !user.is_empty() && !users.contains(&user) {
                users.push(user);
            }
        }
    }
    users
}
