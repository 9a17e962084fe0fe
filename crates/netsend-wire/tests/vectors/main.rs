//! One integration binary: capture vectors, digest vectors and property tests.

mod browse;
mod capture;
mod corpus;
mod datagram;
mod nbns;
mod session;

#[test]
fn every_capture_is_readable() {
    let files = capture::all_captures();
    assert!(files.len() == 18, "captures missing: {files:?}");
    for f in files {
        assert!(!capture::payloads(&f).is_empty(), "{f} has no payloads");
    }
}
