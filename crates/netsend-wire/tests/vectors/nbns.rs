//! Every name service packet in the captures decodes and re-emits byte for byte.

use netsend_wire::nbns::{rr_type, Opcode, Packet, RData, Rcode};

use crate::capture;

#[test]
fn every_name_service_packet_round_trips() {
    let mut seen = 0;
    for file in capture::all_captures() {
        for p in capture::udp(&file, 137) {
            let packet =
                Packet::parse(&p.data).unwrap_or_else(|e| panic!("{file}: {e}: {:02x?}", p.data));
            assert_eq!(packet.to_bytes().unwrap(), p.data, "{file}: {packet}");
            seen += 1;
        }
    }
    assert!(seen >= 30, "only {seen} name service packets");
}

#[test]
fn nbtscan_sets_the_broadcast_bit_on_unicast_status_requests() {
    let packets = capture::udp("21-nbtscan-status.pcap", 137);
    let request = Packet::parse(&packets[0].data).unwrap();
    assert_eq!(request.flags.to_word(), 0x0010);
    assert_eq!(request.question().unwrap().qtype, rr_type::NBSTAT);
    assert!(request.question().unwrap().name.name.is_wildcard());
    let response = packets
        .iter()
        .map(|p| Packet::parse(&p.data).unwrap())
        .find(|p| p.flags.response)
        .unwrap();
    assert_eq!(response.flags.to_word(), 0x8400);
    let RData::NodeStatus(status) = &response.answers[0].rdata else {
        panic!("no node status");
    };
    let names: Vec<String> = status.names.iter().map(|n| n.name.to_string()).collect();
    assert!(names.contains(&"LABSRV<03>".to_owned()), "{names:?}");
    assert!(names.contains(&"LABGROUP<00>".to_owned()), "{names:?}");
    assert_eq!(status.unit_id(), Some([0; 6]));
}

#[test]
fn nmbd_defends_its_names_with_act_err() {
    let responses: Vec<Packet> = capture::udp("23-name-conflict-python.pcap", 137)
        .iter()
        .map(|p| Packet::parse(&p.data).unwrap())
        .filter(|p| p.flags.response && p.flags.opcode() == Opcode::REGISTRATION)
        .collect();
    assert!(!responses.is_empty());
    for r in &responses {
        assert_eq!(r.flags.to_word(), 0xAD86);
        assert_eq!(r.flags.rcode(), Rcode::ACT_ERR);
        assert_eq!(r.answers[0].ttl, 0);
    }
    let registrations = capture::udp("22-nmbd-registration.pcap", 137)
        .iter()
        .map(|p| Packet::parse(&p.data).unwrap())
        .filter(|p| p.flags.opcode() == Opcode::REGISTRATION && !p.flags.response)
        .count();
    assert!(registrations >= 5);
}

#[test]
fn negative_unicast_query_response_has_a_null_record() {
    let negative = capture::udp("20-nmblookup-query.pcap", 137)
        .iter()
        .map(|p| Packet::parse(&p.data).unwrap())
        .find(|p| p.flags.response && p.flags.rcode() == Rcode::NAM_ERR)
        .expect("a negative response");
    assert_eq!(negative.flags.to_word(), 0x8583);
    assert_eq!(negative.answers[0].rr_type, rr_type::NULL);
}
