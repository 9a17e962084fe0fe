#!/usr/bin/env bash
# Builds netsend, starts the messenger (loopback, unprivileged ports, see
# examples/quickstart.toml), sends a message to the local computer name and shows
# the inbox. Leaves the service running; stop it with
#   target/release/netsend --config examples/quickstart.toml messenger stop
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p netsend-cli
ns() { target/release/netsend --config examples/quickstart.toml "$@"; }
ns messenger status >/dev/null 2>&1 || ns messenger start
ns send QUICKSTART "Hello from netsend! This server will shut down in 5 minutes."
ns inbox
