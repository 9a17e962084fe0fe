#!/usr/bin/env bash
# Throughput and p99 of TCP 139 for a sender at concurrency 1 (netsend-bench
# load, 20-byte messages, a new session each), idle and then while user
# nobody runs `netsend inbox --search` with a long pattern in two loops, over
# 3,000 stored messages of 4 KB. Runs the release build in a private network
# namespace on loopback; needs root, python3 and setpriv. SECS sets the
# length of each measurement (default 10), BASE where the state goes (/tmp).
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
NS=netsend-search-$$
D=$(mktemp -d ${BASE:-/tmp}/netsend-search-load.XXXX); chmod 755 "$D"
cat > "$D/netsend.toml" <<CFG
computer_name = "STORE5"
workgroup = "TESTGROUP"
state_dir = "$D/state"
control_socket = "$D/control.sock"
user = ""
[network]
bind = ["127.0.0.1"]
session_port = 139
name_port = 137
datagram_port = 138
[limits]
messages_per_minute = 0
sender_messages_per_minute = 0
inbox_quota = 0
max_connections_per_source = 64
[display]
terminals = false
CFG
ip netns add $NS; ip -n $NS link set lo up
cleanup() { kill ${LOOPS:-} 2>/dev/null || true; [ -n "${SVC:-}" ] && kill $SVC 2>/dev/null; sleep 0.5; ip netns del $NS; rm -rf "$D"; }
trap cleanup EXIT
ip netns exec $NS "$BIN/netsend" --config "$D/netsend.toml" messenger start --foreground > "$D/log" 2>&1 &
SVC=$!
for i in $(seq 100); do [ -S "$D/control.sock" ] && break; sleep 0.1; done
for i in $(seq 100); do [ -f "$D/state/inbox.db" ] && python3 -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute(\"select 1 from messages\")" "$D/state/inbox.db" 2>/dev/null && break; sleep 0.1; done
python3 - "$D/state/inbox.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
text = ("the quick brown fox jumps over the lazy dog " * 93)[:4000]
with c:
    c.executemany("INSERT INTO messages (received_at, from_name, to_alias, source, text, transport) VALUES (?, 'LOADER', 'STORE5', '192.0.2.20:5000', ?, 'session')",
                  [(1700000000000 + i, text) for i in range(3000)])
PY
load() { ip netns exec $NS "$BIN/netsend-bench" load --target 127.0.0.1 --name STORE5 --count 1000000 --concurrency 1 --duration-secs ${SECS:-10}; }
echo "idle:  $(load)"
P="$(python3 -c 'print("the quick brown fox jumps over the lazy dog " * 4 + "!", end="")')"
LOOPS=""
for n in 1 2; do
  setpriv --reuid=65534 --regid=65534 --clear-groups -- sh -c 'while :; do "$0" --config "$1" inbox --search "$2" >/dev/null && echo ok; done' "$BIN/netsend" "$D/netsend.toml" "$P" > "$D/loop$n" 2>&1 &
  LOOPS="$LOOPS $!"
done
sleep 1
echo "busy:  $(load)"
echo "searches finished: $(cat $D/loop1 $D/loop2 | grep -c ok)"
