#!/usr/bin/env bash
# The whole test suite: unit, property, capture-vector, fuzz-corpus replay,
# end-to-end, Samba interop and network-namespace LAN tests. Interop and LAN
# tests need root and Debian's samba, smbclient, nbtscan and iproute2 (.ci/run
# installs them); without them they say so and are skipped, unless
# NETSEND_REQUIRE_INTEROP=1 (as CI sets) makes them fail.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace -- --test-threads=2
