//! End-to-end tests: real `netsend` service processes on test ports, the CLI as a
//! user runs it, Samba's tools as peers, and a LAN of network namespaces.

mod crash;
mod delivery;
mod display;
mod harness;
mod lan;
mod local;
mod netapi;
mod packaging;
mod remote;
mod samba;
mod storage;
mod systemd;
