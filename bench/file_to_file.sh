#!/usr/bin/env bash
# Benchmark "file source -> file sink, 1 million JSON lines of 1 KiB, durable".
#
#   bash bench/file_to_file.sh                       # 1,000,000 lines, 3 rounds, medians
#   LINES=200000 RUNS=1 bash bench/file_to_file.sh   # quicker
#
# On the same input, in the same run, each round measures:
#   ceiling        cat input > out && sync -d out     (the physical ceiling; GNU cat copies in
#                                                     the kernel with copy_file_range)
#   durable-copy   bench/durable_copy.py: read/write 2048 lines at a time, fdatasync after each
#                  (what any sink that fsyncs per batch pays; a reference, not a contender)
#   sluice         sluice run: file source -> file sink, format raw (fsync per batch)
#   rsyslog        rsyslogd -n: imfile -> omfile, %rawmsg% template, omfile defaults (no fsync)
#   rsyslog-sync   the same with omfile sync="on" (fsync per batch), batches of 2048 like sluice
# A daemon's wall time runs from its start until its output holds every input byte; its CPU time
# (user+sys, all threads) and peak RSS are read from /proc at that moment. Then it gets SIGTERM,
# and its output must have exactly LINES lines (and is compared with the input byte for byte).
#
# The machine may be shared: before each measurement the script waits (up to QUIET_WAIT s) until
# other processes are idle, records the CPU they used during it, and the report leaves out
# rounds during which they used more than 0.2 core. Prints a Markdown table of medians to
# stdout; progress goes to stderr, every measurement to $WORK/results.tsv.
#
# Environment: LINES (1000000), LINE_BYTES (1024), RUNS (3), WORK (/var/tmp/sluice-bench-file,
# scratch), CARGO_TARGET_DIR (/var/tmp/sluice-target), TIMEOUT per measurement (900 s),
# QUIET_WAIT (300 s), SKIP_RSYSLOG=1 (no rsyslog), RSYSLOG_SYNC=0 (no rsyslog-sync run).
set -euo pipefail

LINES=${LINES:-1000000}
LINE_BYTES=${LINE_BYTES:-1024}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-900}
QUIET_WAIT=${QUIET_WAIT:-300}
SKIP_RSYSLOG=${SKIP_RSYSLOG:-0}
RSYSLOG_SYNC=${RSYSLOG_SYNC:-1}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-/var/tmp/sluice-bench-file}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sluice-target}
SLUICE="$CARGO_TARGET_DIR/release/sluice"
BYTES=$((LINES * LINE_BYTES))
INPUT="$WORK/input-${LINES}x${LINE_BYTES}.jsonl"
RESULTS="$WORK/results.tsv"

log() { echo "[$(date +%T)] $*" >&2; }
die() { echo "file_to_file.sh: error: $*" >&2; exit 1; }

# The daemon being measured, if any: stopped (by its pid) whatever way this script ends.
DAEMON_PID=
cleanup() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Prerequisites
case "$WORK" in /var/tmp/?*|/tmp/?*) ;; *) die "WORK must be a directory under /var/tmp or /tmp (it is emptied): $WORK" ;; esac
[ -x /usr/bin/time ] || die "GNU time is needed for the ceiling run: apt-get install -y time"
command -v python3 >/dev/null || die "python3 is needed (input generator, measurements)"

RSYSLOGD=
if [ "$SKIP_RSYSLOG" != 1 ]; then
  RSYSLOGD=$(command -v rsyslogd || true)
  [ -n "$RSYSLOGD" ] || { [ -x /usr/sbin/rsyslogd ] && RSYSLOGD=/usr/sbin/rsyslogd; } || true
  if [ -z "$RSYSLOGD" ]; then
    log "rsyslogd not found; installing the Debian package rsyslog"
    SUDO=
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || die "rsyslog is not installed and this is not root: run 'sudo apt-get install -y rsyslog', or SKIP_RSYSLOG=1"
      SUDO=sudo
    fi
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rsyslog; } >&2; then
      die "could not install rsyslog ('apt-get install -y rsyslog' failed, see above); install it by hand, or run with SKIP_RSYSLOG=1"
    fi
    RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
    [ -x "$RSYSLOGD" ] || die "rsyslog was installed but rsyslogd is not found"
  fi
fi

log "building sluice (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$ROOT" && cargo build --release) >&2 || die "cargo build --release failed"
[ -x "$SLUICE" ] || die "no binary at $SLUICE after the build"

mkdir -p "$WORK"
if [ ! -f "$INPUT" ] || [ "$(stat -c %s "$INPUT")" != "$BYTES" ]; then
  log "generating $LINES lines of $LINE_BYTES bytes into $INPUT"
  rm -f "$WORK"/input-*.jsonl
  python3 "$ROOT/bench/gen_lines.py" "$LINES" "$LINE_BYTES" > "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi
[ "$(stat -c %s "$INPUT")" = "$BYTES" ] || die "input $INPUT does not have $BYTES bytes"
cat "$INPUT" > /dev/null # into the page cache: every run reads it from memory
printf 'name\tround\twall_s\tcpu_s\tpeak_rss_kib\tothers_cpu_s\toutput\n' > "$RESULTS"

# ---------------------------------------------------------------------------------------------
# Measurements

# A clean slate before each measurement: the previous output's dirty pages written back, the
# output and state of the previous run of the same thing gone.
# On a shared machine, waits (up to QUIET_WAIT seconds) until other processes are idle.
fresh_dir() {
  rm -rf "$WORK/$1"
  sync
  mkdir -p "$WORK/$1"
  python3 "$ROOT/bench/busy.py" wait-quiet "$QUIET_WAIT"
}

# Checks an output file and records the measurement. Args: name round out wall cpu rss others
record() {
  local name=$1 round=$2 out=$3 wall=$4 cpu=$5 rss=$6 others=$7 lines verdict
  lines=$(wc -l < "$out")
  [ "$lines" -eq "$LINES" ] || die "$name: expected exactly $LINES lines in $out, found $lines"
  if cmp -s "$INPUT" "$out"; then verdict=identical; else verdict=reordered; fi
  [ "$verdict" = identical ] || log "WARNING: $name: $out has the right line count but differs from the input"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$wall" "$cpu" "$rss" "$others" "$verdict" >> "$RESULTS"
  log "$name: ${wall}s wall, ${cpu} CPU-s, peak RSS ${rss} KiB, other processes ${others} CPU-s, output $verdict"
  rm -f "$out"
}

# Runs a command to completion; its output must then be complete. Args: name round out command...
run_foreground() {
  local name=$1 round=$2 out=$3 dir="$WORK/$1" start end u s rss others
  shift 3
  python3 "$ROOT/bench/busy.py" snapshot "$dir/busy.json"
  start=$EPOCHREALTIME
  /usr/bin/time -f "%U %S %M" -o "$dir/time" "$@"
  end=$EPOCHREALTIME
  others=$(python3 "$ROOT/bench/busy.py" since "$dir/busy.json")
  read -r u s rss < "$dir/time"
  record "$name" "$round" "$out" "$(python3 -c "print(f'{$end - $start:.3f}')")" \
    "$(python3 -c "print(f'{$u + $s:.2f}')")" "$rss" "$others"
}

run_ceiling() {
  fresh_dir ceiling
  run_foreground ceiling "$1" "$WORK/ceiling/out.jsonl" \
    sh -c 'cat "$1" > "$2" && sync -d "$2"' sh "$INPUT" "$WORK/ceiling/out.jsonl"
}

run_durable_copy() {
  fresh_dir durable-copy
  run_foreground durable-copy "$1" "$WORK/durable-copy/out.jsonl" \
    python3 "$ROOT/bench/durable_copy.py" "$INPUT" "$WORK/durable-copy/out.jsonl" "$((2048 * LINE_BYTES))"
}

# Starts a daemon, waits for its complete output, stops it. Args: name round out command...
run_daemon() {
  local name=$1 round=$2 out=$3 dir="$WORK/$1" start stats others rc=0 status=0 i
  shift 3
  python3 "$ROOT/bench/busy.py" snapshot "$dir/busy.json"
  start=$EPOCHREALTIME
  "$@" > "$dir/stdout.log" 2> "$dir/stderr.log" &
  DAEMON_PID=$!
  stats=$(python3 "$ROOT/bench/await_output.py" "$DAEMON_PID" "$out" "$BYTES" "$start" "$TIMEOUT") || rc=$?
  others=$(python3 "$ROOT/bench/busy.py" since "$dir/busy.json" "$DAEMON_PID")
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  for i in $(seq 600); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    log "WARNING: $name did not stop within 60 s of SIGTERM; killing it"
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  wait "$DAEMON_PID" || status=$?
  DAEMON_PID=
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$dir/stderr.log" >&2 || true
    [ "$rc" -eq 2 ] && die "$name: output incomplete after ${TIMEOUT}s ($(stat -c %s "$out" 2>/dev/null || echo 0) of $BYTES bytes)"
    die "$name: failed before its output was complete (log above, in $dir/stderr.log)"
  fi
  [ "$status" -eq 0 ] || log "WARNING: $name exited with status $status after SIGTERM (see $dir/stderr.log)"
  record "$name" "$round" "$out" $stats "$others"
}

run_sluice() {
  local round=$1 dir="$WORK/sluice"
  fresh_dir sluice
  cat > "$dir/sluice.yml" <<YML
state_dir: $dir/state
shutdown_timeout: 30s
sinks:
  out:
    type: file
    path: "$dir/out.jsonl"
    format: raw
tenants:
  - name: bench
    sources:
      - name: input
        type: file
        path: "$INPUT"
        read_from: beginning
    sinks: [out]
YML
  "$SLUICE" check -c "$dir/sluice.yml" > /dev/null || die "sluice rejects the benchmark config $dir/sluice.yml"
  run_daemon sluice "$round" "$dir/out.jsonl" "$SLUICE" run -c "$dir/sluice.yml" --log-level warn
}

# Args: round name omfile-extra-parameters main-queue-parameters
run_rsyslog() {
  local round=$1 name=$2 action_extra=$3 queue=$4 dir="$WORK/$2"
  fresh_dir "$name"
  mkdir -p "$dir/work"
  # No system inputs (imuxsock, imklog): only the file, in its own ruleset so that rsyslog's own
  # messages never reach the output.
  cat > "$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir/work" maxMessageSize="64k")
main_queue($queue)
module(load="imfile")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="bench") {
  action(type="omfile" file="$dir/out.jsonl" template="raw" ioBufferSize="256k"
         flushOnTXEnd="on" asyncWriting="off" $action_extra)
}
input(type="imfile" file="$INPUT" tag="bench" readMode="0" freshStartTail="off" ruleset="bench")
CONF
  "$RSYSLOGD" -N1 -f "$dir/rsyslog.conf" > "$dir/check.log" 2>&1 \
    || { cat "$dir/check.log" >&2; die "rsyslogd rejects $dir/rsyslog.conf"; }
  run_daemon "$name" "$round" "$dir/out.jsonl" "$RSYSLOGD" -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid"
}

log "input: $LINES lines, $BYTES bytes; $RUNS round(s)"
for round in $(seq "$RUNS"); do
  log "round $round of $RUNS"
  run_ceiling "$round"
  run_durable_copy "$round"
  run_sluice "$round"
  if [ -n "$RSYSLOGD" ]; then
    run_rsyslog "$round" rsyslog "" 'queue.type="FixedArray"'
    if [ "$RSYSLOG_SYNC" = 1 ]; then
      run_rsyslog "$round" rsyslog-sync 'sync="on"' 'queue.type="FixedArray" queue.dequeueBatchSize="2048"'
    fi
  fi
done
rm -rf "$WORK/ceiling" "$WORK/durable-copy" "$WORK/sluice" "$WORK/rsyslog" "$WORK/rsyslog-sync"

# ---------------------------------------------------------------------------------------------
# Report
RSYSLOG_VERSION=
[ -n "$RSYSLOGD" ] && RSYSLOG_VERSION=$("$RSYSLOGD" -v | awk 'NR==1 {print $2}')
python3 - "$RESULTS" "$LINES" "$BYTES" "$(nproc)" "$(uname -r)" "$RSYSLOG_VERSION" \
  "$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)" <<'PY'
import csv, statistics, sys
path, lines, size, cores, kernel, rsyslog, commit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
runs = {}
for r in csv.DictReader(open(path), delimiter="\t"):
    runs.setdefault(r["name"], []).append(r)
batch_mib = 2048 * (size // lines) / 2**20
label = {
    "ceiling": "raw copy ceiling: cat + one fsync",
    "durable-copy": f"durable-write reference: {batch_mib:g} MiB write + fdatasync, serial",
    "sluice": "sluice (fsync per batch of 2048)",
    "rsyslog": f"rsyslog {rsyslog} imfile→omfile (no fsync)",
    "rsyslog-sync": f"rsyslog {rsyslog} imfile→omfile, sync=\"on\"",
}
med, disturbed = {}, []
print(f"Input: {lines:,} lines of {size // lines} bytes ({size / 2**20:,.0f} MiB); {cores} cores, "
      f"kernel {kernel}; sluice at {commit}; {len(runs.get('sluice', []))} round(s), median of the quiet ones")
print()
print("| run | events/s | MiB/s | CPU-s per million events | peak RSS (MiB) | wall s, each round (~~disturbed~~) |")
print("|---|---:|---:|---:|---:|---|")
for name in label:
    if name not in runs:
        continue
    every = runs[name]
    # Rounds during which other processes used more than 0.2 core are left out, unless all were.
    quiet = [r for r in every if float(r["others_cpu_s"]) <= 0.2 * float(r["wall_s"])]
    rs = quiet or every
    for r in every:
        if r not in quiet:
            disturbed.append(f"{name} round {r['round']} ({r['others_cpu_s']} CPU-s in {r['wall_s']} s)")
    wall = statistics.median(float(r["wall_s"]) for r in rs)
    cpu = statistics.median(float(r["cpu_s"]) for r in rs)
    rss = statistics.median(int(r["peak_rss_kib"]) for r in rs)
    med[name] = wall
    walls = ", ".join(r["wall_s"] if r in rs else f"~~{r['wall_s']}~~" for r in every)
    print(f"| {label[name]} | {lines / wall:,.0f} | {size / wall / 2**20:,.1f} | "
          f"{cpu / lines * 1e6:,.2f} | {rss / 1024:,.0f} | {walls} |")
print()
if "sluice" in med:
    if "rsyslog" in med:
        r = med["rsyslog"] / med["sluice"]
        print(f"- sluice events/s ÷ rsyslog (no fsync) events/s: **{r:.2f}×** (target ≥ 2×: {'met' if r >= 2 else 'MISSED'})")
    if "rsyslog-sync" in med:
        r = med["rsyslog-sync"] / med["sluice"]
        print(f"- sluice events/s ÷ rsyslog (sync=\"on\") events/s: **{r:.2f}×**")
    r = med["ceiling"] / med["sluice"]
    print(f"- sluice MiB/s ÷ raw copy MiB/s: **{r:.2f}** (target ≥ 0.33: {'met' if r >= 1 / 3 else 'MISSED'})")
    if "durable-copy" in med:
        print(f"- sluice MiB/s ÷ durable-write reference MiB/s: **{med['durable-copy'] / med['sluice']:.2f}**")
if disturbed:
    print()
    print("Left out because other processes used more than 0.2 core meanwhile: " + "; ".join(disturbed) + ".")
PY
