//! The service's rooms (its top-level modules) import each other in one
//! direction only: drivers (`transport`, `control`) use components, which
//! use nothing above them, and only `start` assembles everything. A circle
//! would make every room depend on every other, which is what the redesign
//! of issue 15 removed; this test keeps it removed.
//!
//! It reads the sources: every `crate::ROOM` path in code or in a doc
//! comment (not in a plain comment), outside `#[cfg(test)]` modules, is an
//! edge from the file's room to ROOM.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Room of each source file, and the rooms it names.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).expect("under src");
            let first = relative
                .components()
                .next()
                .expect("a first component")
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            if first == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read a source file");
            // Unit tests may reach anywhere.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let named = edges.entry(first.clone()).or_default();
            for line in code.lines() {
                // Doc comments count (their links are references that
                // rustdoc resolves); plain comments do not.
                let trimmed = line.trim_start();
                let line = if trimmed.starts_with("///") || trimmed.starts_with("//!") {
                    trimmed
                } else {
                    line.split("//").next().unwrap_or("")
                };
                for (i, _) in line.match_indices("crate::") {
                    let room: String = line[i + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !room.is_empty() && room != first {
                        named.insert(room);
                    }
                }
            }
        }
    }
    edges
}

/// A circle through `from`, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        let here = path.last().expect("a path").clone();
        for next in edges.get(&here).into_iter().flatten() {
            if *next == path[0] {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if let Some(found) = walk(edges, path, seen) {
                    return Some(found);
                }
                path.pop();
            }
        }
        None
    }
    walk(edges, &mut vec![from.to_owned()], &mut BTreeSet::new())
}

#[test]
fn no_room_of_the_service_imports_itself_round_a_circle() {
    let edges = edges();
    assert!(edges.len() > 8, "the rooms were found: {edges:?}");
    // The reader sees imports: the session driver stores messages.
    assert!(edges["transport"].contains("store"), "{edges:?}");
    // The gateway is a component: below the drivers and the bundle.
    for above in ["transport", "control", "service"] {
        assert!(!edges["gateway"].contains(above), "gateway imports {above}");
    }
    for room in edges.keys() {
        if let Some(found) = circle(&edges, room) {
            panic!(
                "import circle: {}\nall edges: {edges:#?}",
                found.join(" -> ")
            );
        }
    }
}

#[test]
fn only_start_assembles_the_service() {
    for (room, named) in edges() {
        assert!(
            !named.contains("start"),
            "{room} imports start, which only the binary may call"
        );
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let mut edges = BTreeMap::new();
    edges.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    edges.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    edges.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        circle(&edges, "a"),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
    assert_eq!(circle(&edges, "c"), None);
}

#[test]
fn the_wins_server_is_a_component_below_the_drivers() {
    let edges = edges();
    // The service carries it to the drivers; the status handler reads it.
    assert!(edges["service"].contains("wins"), "{edges:?}");
    assert!(edges["control"].contains("wins"), "{edges:?}");
    for above in ["transport", "control", "service", "start"] {
        assert!(!edges["wins"].contains(above), "wins imports {above}");
    }
}
