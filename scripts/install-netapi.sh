#!/usr/bin/env bash
# Builds libnetapi32.so (release) and installs it with its headers and
# pkg-config file:
#   PREFIX/lib/libnetapi32.so
#   PREFIX/include/netapi32/lmmsg.h, lmalert.h, lmserver.h
#   PREFIX/lib/pkgconfig/netapi32.pc
# Usage: bash scripts/install-netapi.sh [PREFIX]   (default /usr/local)
# LIBDIR overrides PREFIX/lib; DESTDIR stages the files for a package.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${1:-/usr/local}"
libdir="${LIBDIR:-$prefix/lib}"
dest="${DESTDIR:-}"
crate=crates/netsend-netapi

cargo build --release -p netsend-netapi
version="$(cargo pkgid -p netsend-netapi | sed 's/.*[#@]//')"
install -Dm755 "${CARGO_TARGET_DIR:-target}/release/libnetapi32.so" "$dest$libdir/libnetapi32.so"
for header in lmmsg.h lmalert.h lmserver.h; do
  install -Dm644 "$crate/include/$header" "$dest$prefix/include/netapi32/$header"
done
mkdir -p "$dest$libdir/pkgconfig"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@LIBDIR@|$libdir|g" -e "s|@VERSION@|$version|g" \
  "$crate/netapi32.pc.in" >"$dest$libdir/pkgconfig/netapi32.pc"
if [ -z "$dest" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then
  ldconfig
fi
echo "installed libnetapi32 $version under $dest$prefix"
