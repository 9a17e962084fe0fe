//! End-to-end tests: real `netsend` service processes on test ports, the CLI as a
//! user runs it, Samba's tools as peers, and a LAN of network namespaces.

mod abuse;
mod alerter;
mod browse;
mod conversations;
mod crash;
mod debian;
mod delivery;
mod display;
mod escapes;
mod gateway;
mod gateway_names;
mod hanging;
mod harness;
mod lan;
mod local;
mod names;
mod netapi;
mod ops;
mod packaging;
mod popup;
mod remote;
mod samba;
mod sites;
mod startup;
mod storage;
mod systemd;
mod trust;
mod wins_server;
