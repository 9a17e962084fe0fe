#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| netsend_proto::fuzzing::directory(data));
