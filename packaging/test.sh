#!/usr/bin/env bash
# Builds the DEB and RPM, checks their contents, signs the RPM with a throwaway GPG key and
# verifies the signature. Takes a release build (minutes), so it is not part of `cargo test`:
#
#   bash packaging/test.sh
#
# Needs cargo-deb, cargo-generate-rpm, rpm (rpmsign, rpm -K), gpg, dpkg-deb, systemd-analyze.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in cargo-deb cargo-generate-rpm rpmsign gpg dpkg-deb systemd-analyze; do
  command -v "$tool" >/dev/null || { echo "missing $tool (cargo install --locked cargo-deb cargo-generate-rpm; apt-get install rpm)" >&2; exit 1; }
done
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
export GNUPGHOME="$SCRATCH/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key "sluice test signing <test@sluice.invalid>" rsa3072 sign never
GPG_KEY="sluice test signing <test@sluice.invalid>" packaging/build.sh

OUT=target/packages
RPM=$(ls "$OUT"/*.rpm)
DEB=$(ls "$OUT"/*.deb)
fail() { echo "FAIL: $*" >&2; exit 1; }

rpm_files=$(rpm -qlp "$RPM")
deb_files=$(dpkg -c "$DEB")
for path in /usr/bin/sluice /etc/sluice/sluice.yml /usr/share/sluice/wazuh/sluice_withsecure_rules.xml \
            /usr/share/sluice/wazuh/ossec-localfile.xml /usr/share/sluice/wazuh/custom-sluice \
            /usr/share/sluice/wazuh/ossec-integration.xml; do
  grep -qx "$path" <<<"$rpm_files" || fail "$path not in the RPM"
  grep -q " \.$path\$" <<<"$deb_files" || fail "$path not in the DEB"
done
grep -qx /usr/lib/systemd/system/sluice.service <<<"$rpm_files" || fail "unit not in the RPM"
grep -q "systemd/system/sluice.service" <<<"$deb_files" || fail "unit not in the DEB"
rpm -qp --configfiles "$RPM" | grep -qx /etc/sluice/sluice.yml || fail "sluice.yml is not a config file in the RPM"
rpm -qp --scripts "$RPM" | grep -q useradd || fail "the RPM does not create the sluice user"
dpkg-deb -f "$DEB" Package | grep -qx sluice || fail "DEB package name"
dpkg-deb -e "$DEB" "$SCRATCH/control"
grep -q adduser "$SCRATCH/control/preinst" || fail "the DEB does not create the sluice user"
grep -qx /etc/sluice/sluice.yml "$SCRATCH/control/conffiles" || fail "sluice.yml is not a conffile in the DEB"

# Signature: import the throwaway public key into a scratch rpm database and verify.
gpg --armor --export "test@sluice.invalid" > "$SCRATCH/key.asc"
rpm --dbpath "$SCRATCH/rpmdb" --initdb
rpm --dbpath "$SCRATCH/rpmdb" --import "$SCRATCH/key.asc"
rpm --dbpath "$SCRATCH/rpmdb" -K "$RPM" | tee "$SCRATCH/verify"
grep -qi "signatures OK" "$SCRATCH/verify" || fail "RPM signature does not verify"

# The unit passes systemd-analyze with the binary it will run.
sed "s|/usr/bin/sluice|$PWD/target/release/sluice|g" packaging/systemd/sluice.service > "$SCRATCH/sluice.service"
systemd-analyze verify "$SCRATCH/sluice.service"
echo "packages OK: $RPM $DEB"
