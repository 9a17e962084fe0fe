#!/usr/bin/env bash
# Builds the Debian packages netsend, libnetapi32-0 and libnetapi32-dev
# (dpkg-buildpackage with debhelper, from packaging/debian) into target/deb/
# and checks them with lintian. The last line printed is the path of
# netsend_VERSION_ARCH.deb.
# Usage: bash scripts/build-deb.sh      (LINTIAN=0 skips the lintian check)
# Needs: debhelper, dpkg-dev, lintian and a Rust toolchain (rustup's is fine).
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD"
out="${CARGO_TARGET_DIR:-$src/target}/deb"

# Run from cargo (the package test), the caller's CARGO_PKG_* and
# CARGO_MANIFEST_* would reach build scripts that watch them (ring's) and
# rebuild them on every alternation with a plain run.
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^CARGO_(PKG|MANIFEST|CRATE|BIN|PRIMARY)_')

version="$(cargo pkgid -p netsend-cli | sed 's/.*[#@]//')"
deb_version="$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)"
if [ "$version" != "$deb_version" ]; then
  echo "packaging/debian/changelog is at $deb_version, Cargo.toml at $version: add a changelog entry" >&2
  exit 1
fi
arch="$(dpkg-architecture -q DEB_HOST_ARCH)"

# debian/ is staged under target/deb so that the build's by-products
# (debian/tmp, the .changes, .buildinfo and .deb files, which dpkg-buildpackage
# writes beside the tree) stay out of the source tree.
tree="$out/netsend-$version"
rm -rf "$tree" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$tree"
cp -r packaging/debian "$tree/debian"
# -d: the Rust toolchain may come from rustup rather than Debian's cargo
# package, which Build-Depends names.
(cd "$tree" && NETSEND_SRC="$src" dpkg-buildpackage -b -us -uc -d >"$out/build.log" 2>&1) || {
  tail -n 40 "$out/build.log" >&2
  exit 1
}
changes="$out/netsend_${version}_${arch}.changes"
if [ "${LINTIAN:-1}" != 0 ]; then
  # Every remaining tag (info included) is overridden with its reason in
  # packaging/debian/*.lintian-overrides.
  lintian --fail-on error,warning,info --info --profile debian "$changes" >&2
fi
echo "$out/netsend_${version}_${arch}.deb"
