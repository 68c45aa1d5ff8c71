#!/usr/bin/env bash
# Benchmark: `sluice collect` (the snapshot collectors) against the vendor-API emulators of
# crates/emulators, next to the original Python data collectors (massyn/cyber-metrics) where they
# run against the same emulators. Prints a Markdown table; keeps each run's `time -v` output and
# `sluice collect` lines under $WORK.
#
# What it runs, each collector process under `/usr/bin/time -v` (the emulator is not counted):
#   1. sluice, TENANTS (200) tenants x `type: crowdstrike`, `datasets: [crowdstrike_hosts]`, HOSTS
#      (20,000) hosts each = 4,000,000 records, `sluice collect --parallel 8`, one file sink
#      `out/%TAG/%TENANCY.json` (one JSON array per tenant).
#   2. sluice, one tenant `type: tenable`, `datasets: [tenable_vulnerabilities]`: an export of BIG
#      (2,000,000) records, then one of SMALL (200,000): does peak RSS grow with the data set?
#   3. peers, one tenant, PEER_RECORDS (200,000) records of the same vendor in the same emulator,
#      sluice first and then the original: KnowBe4 enrollments (`src_knowbe4.py`), Snyk
#      organizations + members + projects + issues (`src_snyk.py`), Tenable vulnerabilities
#      (`vulnerabilities()` of `src_tenableio.py`, through pyTenable, `TIO_URL` = the emulator).
#      sluice's client-side rate limits (KnowBe4 45 requests a minute, Snyk 1,500: the vendors'
#      documented limits) are lifted here, as the originals have none and the emulators enforce
#      none: this measures the collectors, not the vendors' limits.
# The emulators are bench/collectors_emulator (a binary over crates/emulators sized by flags): the
# stock `collectors-emulator` fills every vendor with --records per tenant, and its Okta System
# Log events are held in memory (200 tenants x 20,000 of them would not fit in 24 GB).
# Records are counted in the output files (each record carries one `_upload_id`), not taken from
# the collectors' own reports; a run whose count is not the expected one fails the script.
#
# How long: about 7 minutes on 2 cores once built (run 1 takes about 2). Needs: cargo,
# python3 with venv and pip (PyPI) for the peers, about 8 GB free under WORK, the original's
# repository (PEER_REPO: a checkout or a bare git directory; PEERS=0 skips the peers).
#
#   bash bench/collectors.sh
#   TENANTS=20 HOSTS=2000 BIG=200000 SMALL=20000 PEER_RECORDS=20000 bash bench/collectors.sh  # quick
set -euo pipefail

TENANTS=${TENANTS:-200}
HOSTS=${HOSTS:-20000}
BIG=${BIG:-2000000}
SMALL=${SMALL:-200000}
PEER_RECORDS=${PEER_RECORDS:-200000}
PARALLEL=${PARALLEL:-8}
PEERS=${PEERS:-1}
PEER_REPO=${PEER_REPO:-/work/.mirror/massyn+cyber-metrics/repo}
VENV=${VENV:-/var/tmp/sluice-bench-venv}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/sluice-bench-collectors}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sluice-target}
SLUICE="$CARGO_TARGET_DIR/release/sluice"
EMULATOR="$CARGO_TARGET_DIR/release/bench-collectors-emulator"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

(cd "$ROOT" && cargo build --release --quiet --bin sluice)
cargo build --release --quiet --manifest-path "$ROOT/bench/collectors_emulator/Cargo.toml"
rm -rf "$WORK" && mkdir -p "$WORK"

# --- the emulators: CrowdStrike tenants client{i}; Tenable keys access0 (BIG), access1 (SMALL),
# access2 (PEER_RECORDS); KnowBe4 kb4-key0 and Snyk snyk-token0 with PEER_RECORDS records.
"$EMULATOR" --crowdstrike-tenants "$TENANTS" --hosts "$HOSTS" --tenable-vulns "$BIG,$SMALL,$PEER_RECORDS" \
  --knowbe4 "$PEER_RECORDS" --snyk-issues "$PEER_RECORDS" > "$WORK/emulator.txt" &
PIDS+=("$!")
for _ in $(seq 100); do [ "$(wc -l < "$WORK/emulator.txt")" -ge 4 ] && break; sleep 0.1; done
url() { awk -v n="$1" '$1 == n { print $2 }' "$WORK/emulator.txt"; }
CS_URL=$(url crowdstrike) TIO_EMU=$(url tenable) KB4_URL=$(url knowbe4) SNYK_URL=$(url snyk)
[ -n "$SNYK_URL" ] || { echo "the emulator did not start" >&2; exit 1; }

# Counts records (`"_upload_id"` keys) in every JSON array file under $1, reading in blocks (a
# 2,000,000-record array is one line of about 2 GB); checks each file is an array, and parses
# the first few whole to check the count against the array's length.
count_records() {
  python3 - "$1" <<'PY'
import json, os, sys
key, total, parsed = b'"_upload_id"', 0, 0
for d, _, files in sorted(os.walk(sys.argv[1])):
    for f in sorted(files):
        path, n, tail, first, last = os.path.join(d, f), 0, b'', None, None
        with open(path, 'rb') as fh:
            while block := fh.read(1 << 22):
                buf = tail + block
                n += buf.count(key)
                tail = buf[-(len(key) - 1):]
                first = first or buf[:1]
                last = buf[-1:]
        if first != b'[' or last != b']':
            sys.exit(f'{path}: not a JSON array')
        if parsed < 3 and os.path.getsize(path) < 1 << 30:
            parsed += 1
            length = len(json.load(open(path, 'rb')))
            if length != n:
                sys.exit(f'{path}: {length} records but {n} _upload_id keys')
        total += n
print(total)
PY
}

ROWS=()
# measure NAME EXPECTED OUTDIR CMD...: runs CMD under /usr/bin/time -v; checks and counts the
# records in OUTDIR; appends a table row and sets REC_S and RSS_MIB for ratios.
measure() {
  local name=$1 expected=$2 out=$3; shift 3
  local tv="$WORK/$(echo "$name" | tr -c 'a-zA-Z0-9' _).time"
  if ! /usr/bin/time -v -o "$tv" "$@" > "$tv.out" 2> "$tv.err"; then
    echo "failed: $name (see $tv.out, $tv.err)" >&2; cat "$tv.out" >&2; tail -20 "$tv.err" >&2; exit 1
  fi
  local got; got=$(count_records "$out")
  [ "$got" -eq "$expected" ] || { echo "$name: expected $expected records, found $got" >&2; exit 1; }
  read -r REC_S RSS_MIB ROW < <(python3 - "$tv" "$name" "$got" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
field = lambda label: re.search(re.escape(label) + r': (.*)', text).group(1).strip()
parts = [float(p) for p in field('Elapsed (wall clock) time (h:mm:ss or m:ss)').split(':')]
wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
cpu = float(field('User time (seconds)')) + float(field('System time (seconds)'))
rss = int(field('Maximum resident set size (kbytes)')) / 1024
name, records = sys.argv[2], int(sys.argv[3])
print(f'{records / wall:.0f} {rss:.0f} | {name} | {records:,} | {wall:,.1f} | {records / wall:,.0f} | {cpu:,.1f} | {cpu / records * 1e6:,.1f} | {rss:,.0f} |')
PY
)
  ROWS+=("$ROW")
  echo "$ROW" >&2
}

# sluice_config FILE OUTDIR TENANTS_YAML: a config with one file sink.
sluice_config() {
  cat > "$1" <<EOF
state_dir: $(dirname "$1")/state
sinks:
  out: {type: file, path: "$2/%TAG/%TENANCY.json"}
tenants:
$3
EOF
}

# --- 1. CrowdStrike, TENANTS tenants.
R="$WORK/crowdstrike"; mkdir -p "$R"
{
  for ((t = 0; t < TENANTS; t++)); do
    printf '  - name: t%03d\n    sinks: [out]\n    sources:\n' "$t"
    printf '      - {name: falcon, type: crowdstrike, datasets: [crowdstrike_hosts], client_id: client%d, client_secret: secret%d, base_url: "%s"}\n' "$t" "$t" "$CS_URL"
  done
} > "$R/tenants.yml"
sluice_config "$R/sluice.yml" "$R/out" "$(cat "$R/tenants.yml")"
measure "sluice: $TENANTS tenants × CrowdStrike hosts ($HOSTS each), --parallel $PARALLEL" $((TENANTS * HOSTS)) "$R/out" \
  "$SLUICE" collect -c "$R/sluice.yml" --parallel "$PARALLEL"
rm -rf "$R/out"

# --- 2. Tenable, one tenant, BIG then SMALL records.
tenable() { # name access_key records
  R="$WORK/$1"; mkdir -p "$R"
  sluice_config "$R/sluice.yml" "$R/out" "  - name: acme
    sinks: [out]
    sources:
      - {name: tio, type: tenable, datasets: [tenable_vulnerabilities], access_key: $2, secret_key: secret${2#access}, base_url: \"$TIO_EMU\"}"
  measure "sluice: Tenable vulnerabilities export, $(python3 -c "print(f'{$3:,}')") records" "$3" "$R/out" "$SLUICE" collect -c "$R/sluice.yml"
  rm -rf "$R/out"
}
tenable tenable-big access0 "$BIG"
tenable tenable-small access1 "$SMALL"

# --- 3. The originals, next to sluice on the same vendor and data.
RATIOS=()
ratio() { # vendor sluice_rec_s sluice_rss peer_rec_s peer_rss
  RATIOS+=("- $1: sluice $(python3 -c "print(f'{$2/$4:.1f}')")× the original's records/s, $(python3 -c "print(f'{$5/$3:.1f}')")× less peak RSS ($3 against $5 MiB)")
}
if [ "$PEERS" = 1 ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet duckdb boto3 psycopg2-binary python-dotenv requests pytenable
  P="$WORK/peer"; mkdir -p "$P"
  if [ -d "$PEER_REPO/01-collectors" ]; then cp -r "$PEER_REPO/library.py" "$PEER_REPO/01-collectors" "$P/"
  else # a bare repository: the few files needed, one by one (a partial clone may lack others)
    mkdir -p "$P/01-collectors"
    for f in library.py 01-collectors/collector.py 01-collectors/src_knowbe4.py 01-collectors/src_snyk.py \
      01-collectors/src_tenableio.py; do git --git-dir="$PEER_REPO" show "HEAD:$f" > "$P/$f"; done
  fi
  peer() { # name expected outdir env... -- args (run in 01-collectors with the venv's python)
    local name=$1 expected=$2 out=$3; shift 3
    local env=(); while [ "$1" != -- ]; do env+=("$1"); shift; done; shift
    measure "$name" "$expected" "$out" env -C "$P/01-collectors" "${env[@]}" TENANCY=acme \
      STORE_FILE="$out/%TAG/%TENANCY.json" "$VENV/bin/python" "$@"
  }
  nolimit=100000

  R="$WORK/kb4"; mkdir -p "$R"
  sluice_config "$R/sluice.yml" "$R/out" "  - name: acme
    sinks: [out]
    sources:
      - {name: kb4, type: knowbe4, token: kb4-key0, endpoint: \"$KB4_URL/v1/training/enrollments\", rate_limit_per_minute: $nolimit}"
  measure "sluice: KnowBe4 enrollments" "$PEER_RECORDS" "$R/out" "$SLUICE" collect -c "$R/sluice.yml"
  s=($REC_S $RSS_MIB); rm -rf "$R/out"
  peer "original src_knowbe4.py" "$PEER_RECORDS" "$R/peer-out" \
    KNOWBE4_TOKEN=kb4-key0 KNOWBE4_ENDPOINT="$KB4_URL/v1/training/enrollments" -- src_knowbe4.py
  ratio KnowBe4 "${s[0]}" "${s[1]}" "$REC_S" "$RSS_MIB"; rm -rf "$R/peer-out"

  snyk_records=$((1 + 20 + PEER_RECORDS / 10 + PEER_RECORDS))
  R="$WORK/snyk"; mkdir -p "$R"
  sluice_config "$R/sluice.yml" "$R/out" "  - name: acme
    sinks: [out]
    sources:
      - {name: snyk, type: snyk, token: snyk-token0, endpoint: \"$SNYK_URL\", rate_limit_per_minute: $nolimit}"
  measure "sluice: Snyk (orgs, members, projects, issues)" "$snyk_records" "$R/out" "$SLUICE" collect -c "$R/sluice.yml"
  s=($REC_S $RSS_MIB); rm -rf "$R/out"
  peer "original src_snyk.py" "$snyk_records" "$R/peer-out" SNYK_TOKEN=snyk-token0 SNYK_ENDPOINT="$SNYK_URL" -- src_snyk.py
  ratio Snyk "${s[0]}" "${s[1]}" "$REC_S" "$RSS_MIB"; rm -rf "$R/peer-out"

  R="$WORK/tio-peer"; mkdir -p "$R"
  sluice_config "$R/sluice.yml" "$R/out" "  - name: acme
    sinks: [out]
    sources:
      - {name: tio, type: tenable, datasets: [tenable_vulnerabilities], access_key: access2, secret_key: secret2, base_url: \"$TIO_EMU\"}"
  measure "sluice: Tenable vulnerabilities export" "$PEER_RECORDS" "$R/out" "$SLUICE" collect -c "$R/sluice.yml"
  s=($REC_S $RSS_MIB); rm -rf "$R/out"
  # main() would also run the compliance, assets and WAS exports: only the vulnerabilities one.
  peer "original src_tenableio.py, vulnerabilities()" "$PEER_RECORDS" "$R/peer-out" \
    TIO_ACCESS_KEY=access2 TIO_SECRET_KEY=secret2 TIO_URL="$TIO_EMU" -- -c \
    'import src_tenableio as m; from collector import Collector; C = Collector(m.meta()); C.test_environment() and m.vulnerabilities(C)'
  ratio "Tenable vulnerabilities" "${s[0]}" "${s[1]}" "$REC_S" "$RSS_MIB"; rm -rf "$R/peer-out"
fi

echo
echo "| run | records | wall (s) | records/s | CPU-s | CPU-s per million records | peak RSS (MiB) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
printf '%s\n' "${RATIOS[@]:-}"
