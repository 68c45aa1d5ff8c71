#!/usr/bin/env bash
# Benchmark: file source -> file sink, N JSON lines of ~1 KiB, durable.
# Compares sluice with the physical ceiling (cat + one fsync) and rsyslog (imfile -> omfile) on
# the same input in the same run. Prints a Markdown table.
#
#   bash bench/file_to_file.sh            # 1,000,000 lines
#   LINES=200000 bash bench/file_to_file.sh
set -euo pipefail

LINES=${LINES:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/sluice-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sluice-target}
SLUICE="$CARGO_TARGET_DIR/release/sluice"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

command -v rsyslogd >/dev/null || { echo "rsyslogd not found: apt-get install rsyslog" >&2; exit 1; }
(cd "$ROOT" && cargo build --release --quiet)
rm -rf "$WORK" && mkdir -p "$WORK"
INPUT="$WORK/input.jsonl"
python3 "$ROOT/bench/gen_lines.py" "$LINES" > "$INPUT"
BYTES=$(stat -c %s "$INPUT")

# Runs "$@" in the background, waits until $OUT has $LINES lines, stops it; sets WALL, CPU, RSS.
measure() {
  local out=$1; shift
  local stats="$WORK/stats.$$"
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%U %S %M" -o "$stats" "$@" &
  local pid=$!
  PIDS+=("$pid")
  while :; do
    if [ -f "$out" ] && [ "$(stat -c %s "$out")" -ge "$BYTES" ]; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "process exited early: $*" >&2; exit 1; fi
    sleep 0.05
  done
  end=$(date +%s.%N)
  pkill -TERM -P "$pid" 2>/dev/null || true
  wait "$pid" || true
  read -r user sys rss < "$stats"
  WALL=$(echo "$end - $start" | bc -l)
  CPU=$(echo "$user + $sys" | bc -l)
  RSS=$rss
  local got; got=$(wc -l < "$out")
  [ "$got" -eq "$LINES" ] || { echo "expected $LINES lines in $out, got $got" >&2; exit 1; }
}

row() { # name wall cpu rss(KiB)
  python3 - "$@" "$LINES" "$BYTES" <<'PY'
import sys
name, wall, cpu, rss, lines, size = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
print(f"| {name} | {lines/wall:,.0f} | {size/wall/2**20:,.1f} | {cpu/lines*1e6:,.2f} | {rss/1024:,.0f} |")
PY
}

# 1. Physical ceiling: copy plus one fsync.
start=$(date +%s.%N)
/usr/bin/time -f "%U %S %M" -o "$WORK/cat.stats" sh -c "cat '$INPUT' > '$WORK/cat.out' && sync -d '$WORK/cat.out'"
end=$(date +%s.%N)
read -r u s CAT_RSS < "$WORK/cat.stats"
CAT_WALL=$(echo "$end - $start" | bc -l); CAT_CPU=$(echo "$u + $s" | bc -l)

# 2. sluice: file source -> file sink (format raw, fsync per batch).
mkdir -p "$WORK/sluice"
cat > "$WORK/sluice/sluice.yml" <<YML
state_dir: $WORK/sluice/state
sinks:
  out: {type: file, path: "$WORK/sluice/out.jsonl", format: raw}
tenants:
  - name: bench
    sources:
      - {name: in, type: file, path: "$INPUT", read_from: beginning}
    sinks: [out]
YML
measure "$WORK/sluice/out.jsonl" "$SLUICE" run -c "$WORK/sluice/sluice.yml" --log-level warn
S_WALL=$WALL S_CPU=$CPU S_RSS=$RSS

# 3. rsyslog: imfile -> omfile, raw message per line.
mkdir -p "$WORK/rsyslog/work"
cat > "$WORK/rsyslog/rsyslog.conf" <<CONF
global(workDirectory="$WORK/rsyslog/work" maxMessageSize="64k")
module(load="imfile" mode="polling" PollingInterval="1")
template(name="raw" type="string" string="%rawmsg%\n")
input(type="imfile" File="$INPUT" Tag="bench" readMode="0" freshStartTail="off")
action(type="omfile" file="$WORK/rsyslog/out.jsonl" template="raw" ioBufferSize="256k" flushOnTXEnd="on" asyncWriting="off")
CONF
measure "$WORK/rsyslog/out.jsonl" rsyslogd -n -f "$WORK/rsyslog/rsyslog.conf" -i "$WORK/rsyslog/pid"
R_WALL=$WALL R_CPU=$CPU R_RSS=$RSS

echo "Input: $LINES lines, $((BYTES / 1048576)) MiB ($(nproc) cores)"
echo
echo "| run | events/s | MiB/s | CPU-s per million events | peak RSS (MiB) |"
echo "|---|---:|---:|---:|---:|"
row "cat + fsync (ceiling)" "$CAT_WALL" "$CAT_CPU" "$CAT_RSS"
row "sluice" "$S_WALL" "$S_CPU" "$S_RSS"
row "rsyslog imfile→omfile" "$R_WALL" "$R_CPU" "$R_RSS"
echo
python3 - "$S_WALL" "$R_WALL" "$CAT_WALL" <<'PY'
import sys
s, r, c = map(float, sys.argv[1:])
print(f"sluice / rsyslog events/s: {r/s:.2f}x (target >= 2x)")
print(f"sluice / raw copy rate:    {c/s:.2f} (target >= 0.33)")
PY
