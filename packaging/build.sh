#!/usr/bin/env bash
# Builds the release binary, then the DEB (cargo-deb) and the RPM (cargo-generate-rpm), and signs
# the RPM when a GPG key is given.
#
#   packaging/build.sh                         # unsigned packages in target/packages/
#   GPG_KEY="Release Key <ops@example.org>" packaging/build.sh   # RPM signed with that key
#
# Needs cargo-deb and cargo-generate-rpm, installed here when missing (`cargo install --locked`),
# and for signing rpmsign (`apt-get install rpm` / `dnf install rpm-sign`) and gpg.
# The packaged binary is built without the `demo` feature: it links no emulators.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in cargo-deb cargo-generate-rpm; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool (cargo install --locked $tool)" >&2
    cargo install --locked "$tool"
  fi
done
OUT=target/packages
mkdir -p "$OUT"
cargo build --release --locked -p sluice --no-default-features
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
