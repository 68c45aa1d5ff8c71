#!/usr/bin/env bash
# Builds the release binary, then the DEB (cargo-deb) and the RPM (cargo-generate-rpm), and signs
# the RPM when a GPG key is given.
#
#   packaging/build.sh                         # unsigned packages in target/packages/
#   GPG_KEY="Release Key <ops@example.org>" packaging/build.sh   # RPM signed with that key
#
# Needs: cargo-deb, cargo-generate-rpm (`cargo install --locked cargo-deb cargo-generate-rpm`),
# and for signing rpmsign (`apt-get install rpm` / `dnf install rpm-sign`) and gpg.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/packages
mkdir -p "$OUT"
cargo build --release --locked -p sluice
# The package metadata names target/release/sluice; bring the binary there when the build
# used another target directory (CARGO_TARGET_DIR).
BUILT="${CARGO_TARGET_DIR:-target}/release/sluice"
if [ "$BUILT" != "target/release/sluice" ]; then
  mkdir -p target/release
  cp "$BUILT" target/release/sluice
fi
CARGO_TARGET_DIR=target cargo deb --no-build --output "$OUT/"
cargo generate-rpm --output "$OUT/"
if [ -n "${GPG_KEY:-}" ]; then
  for rpm in "$OUT"/*.rpm; do
    rpmsign --define "_gpg_name $GPG_KEY" --define "__gpg $(command -v gpg)" --addsign "$rpm"
  done
fi
ls -l "$OUT"
