//! Reads the lab captures: UDP payloads and per-direction TCP payload streams.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;

/// One UDP datagram or TCP segment payload found in a capture.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) tcp: bool,
    pub(crate) data: Vec<u8>,
}

/// Every capture file shipped with the tests.
pub(crate) fn all_captures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    names.sort();
    names
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/captures")
}

/// All non-empty UDP and TCP payloads of a capture, in capture order.
pub(crate) fn payloads(file: &str) -> Vec<Payload> {
    let f = std::fs::File::open(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut reader = PcapReader::new(f).unwrap();
    let mut out = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.unwrap();
        let Ok(sliced) = SlicedPacket::from_ethernet(&pkt.data) else {
            continue;
        };
        let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
            continue;
        };
        let (src, dst) = (ip.header().source_addr(), ip.header().destination_addr());
        let (src_port, dst_port, tcp, data) = match &sliced.transport {
            Some(TransportSlice::Udp(u)) => {
                (u.source_port(), u.destination_port(), false, u.payload())
            }
            Some(TransportSlice::Tcp(t)) => {
                (t.source_port(), t.destination_port(), true, t.payload())
            }
            _ => continue,
        };
        if data.is_empty() {
            continue;
        }
        out.push(Payload {
            src,
            dst,
            src_port,
            dst_port,
            tcp,
            data: data.to_vec(),
        });
    }
    out
}

/// UDP payloads to or from `port`.
pub(crate) fn udp(file: &str, port: u16) -> Vec<Payload> {
    payloads(file)
        .into_iter()
        .filter(|p| !p.tcp && (p.src_port == port || p.dst_port == port))
        .collect()
}

/// TCP streams of a capture: for each connection direction (keyed by the four-tuple
/// in order of first appearance), the concatenated payload bytes.
pub(crate) fn tcp_streams(file: &str) -> Vec<(Payload, Vec<u8>)> {
    let mut streams: Vec<(Payload, Vec<u8>)> = Vec::new();
    for p in payloads(file).into_iter().filter(|p| p.tcp) {
        let key = (p.src, p.src_port, p.dst, p.dst_port);
        match streams
            .iter_mut()
            .find(|(q, _)| (q.src, q.src_port, q.dst, q.dst_port) == key)
        {
            Some((_, bytes)) => bytes.extend_from_slice(&p.data),
            None => {
                let data = p.data.clone();
                streams.push((p, data));
            }
        }
    }
    streams
}
