//! End-to-end tests: real `netsend` service processes on test ports, the CLI as a
//! user runs it, Samba's tools as peers, and a LAN of network namespaces.

mod abuse;
mod crash;
mod delivery;
mod display;
mod escapes;
mod hanging;
mod harness;
mod lan;
mod local;
mod names;
mod netapi;
mod packaging;
mod remote;
mod samba;
mod startup;
mod storage;
mod systemd;
mod trust;
