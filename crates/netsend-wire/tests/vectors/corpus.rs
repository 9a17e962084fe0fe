//! Replays the fuzz corpus (seeded from the captures, grown by fuzzing) through
//! the same round-trip checks the fuzz targets run, on the stable toolchain.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "empty corpus {}", dir.display());
    inputs
}

/// A fuzz target: its corpus directory and its round-trip check.
type Target = (&'static str, fn(&[u8]));

#[test]
fn fuzz_corpus_replays_cleanly() {
    let targets: [Target; 11] = [
        ("nbns", netsend_wire::fuzzing::nbns),
        ("name", netsend_wire::fuzzing::name),
        ("nbss", netsend_wire::fuzzing::nbss),
        ("smb", netsend_wire::fuzzing::smb),
        ("nbds", netsend_wire::fuzzing::nbds),
        ("mailslot", netsend_wire::fuzzing::mailslot),
        ("http", netsend_wire::fuzzing::http),
        ("alert", netsend_wire::fuzzing::alert),
        ("browse", netsend_wire::fuzzing::browse),
        ("site", netsend_wire::fuzzing::site),
        ("site_broadcast", netsend_wire::fuzzing::site_broadcast),
    ];
    for (target, run) in targets {
        for input in corpus(target) {
            run(&input);
        }
    }
}
