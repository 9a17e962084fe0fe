//! `libnetapi32` is loaded into other people's programs: it must not carry
//! the daemon's runtime, storage or bus clients. This test keeps it so.
//!
//! It asks `cargo tree` for the library's normal dependencies as the library
//! is built on its own (`cargo build -p netsend-netapi`). `cargo metadata`
//! would not do: its resolve unifies features across the whole workspace, and
//! the CLI turns on `netsend-control`'s `async` feature (tokio), which the
//! library never sees.

use std::process::Command;

/// Crates that belong to the service or its runtime, never to the library.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "rusqlite",
    "libsqlite3-sys",
    "zbus",
    "ureq",
    "netsend-service",
];

#[test]
fn the_library_links_none_of_the_daemons_dependencies() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = match Command::new(&cargo)
        .args(["tree", "--offline", "--manifest-path", manifest])
        .args(["-p", "netsend-netapi", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: no cargo to ask ({cargo:?})");
            return;
        }
        Err(e) => panic!("cargo tree: {e}"),
    };
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    // The walk really happened: the library and its client crate are listed.
    assert!(names.contains(&"netsend-netapi"), "{tree}");
    assert!(names.contains(&"netsend-control"), "{tree}");
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| names.contains(f)).collect();
    assert!(
        found.is_empty(),
        "libnetapi32 depends on {found:?}:\n{tree}"
    );
}
