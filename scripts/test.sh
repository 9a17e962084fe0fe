#!/usr/bin/env bash
# The whole test suite: unit, property, capture-vector, end-to-end, Samba interop
# and network-namespace tests. Interop and namespace tests need root and the Debian
# packages that .ci/run installs (samba, smbclient, nbtscan, iproute2); without them
# they say so and are skipped, unless NETSEND_REQUIRE_INTEROP=1 makes them fail.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads=2
