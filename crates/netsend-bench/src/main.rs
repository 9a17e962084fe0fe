//! `netsend-bench`: the same load against netsend and against Samba's smbd
//! (message command writing a file), and name queries against netsend and nmbd,
//! on a LAN of network namespaces (192.0.2.0/24 only), with medians and ratios,
//! and the receive path's ceiling: the same load against a no-op responder.
//!
//! Run as root after `cargo build --release -p netsend-cli -p netsend-bench`:
//! `target/release/netsend-bench --count 2000 --repeat 3`. The load generator is
//! this binary re-run inside the client namespace (`load` and `queries`
//! subcommands), and the responder this binary re-run on its own host (`noop`);
//! every loop is bounded by `--count` or a duration.

mod browse;
mod lan;
mod load;
mod noop;
mod sites;

use clap::{Parser, Subcommand};

/// Benchmark netsend against Samba.
#[derive(Debug, Parser)]
#[command(name = "netsend-bench", about)]
struct Cli {
    /// What to run (default: the whole side-by-side benchmark).
    #[command(subcommand)]
    command: Option<Command>,
    /// Messages per case and run.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Runs per case; medians are reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Seconds each receiver is loaded per run in the ceiling case.
    #[arg(long, default_value_t = 4)]
    ceiling_secs: u64,
    /// Run only the ceiling case (netsend, smbd and the no-op responder).
    #[arg(long)]
    only_ceiling: bool,
    /// Run only the browse case: how long a fresh host takes to appear in
    /// `netsend view` elsewhere and in nmbd's browse list (`--repeat` runs).
    #[arg(long)]
    only_browse: bool,
    /// Run only the sites case: site A to site B through both gateways and a
    /// 3-node NATS cluster, beside direct delivery on one LAN (`--count`
    /// messages per run, concurrency 1 and 16; needs nats-server).
    #[arg(long)]
    only_sites: bool,
}

/// Subcommands run inside the LAN's namespaces.
#[derive(Debug, Subcommand)]
enum Command {
    /// Send `count` messages to `target` (one TCP session each) and print JSON.
    Load(load::LoadArgs),
    /// Send `count` unicast name queries to `target` and print JSON.
    Queries(load::QueryArgs),
    /// Answer `smbclient -M` exchanges, storing nothing (the ceiling).
    Noop(noop::NoopArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Load(args)) => load::run_load(&args),
        Some(Command::Queries(args)) => load::run_queries(&args),
        Some(Command::Noop(args)) => noop::run(&args).map_err(|e| e.to_string()),
        None if cli.only_browse => browse::run(cli.repeat),
        None if cli.only_sites => sites::run(cli.count, cli.repeat),
        None => lan::run_benchmark(cli.count, cli.repeat, cli.ceiling_secs, cli.only_ceiling),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netsend-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
