"""Benchmark: many WithSecure tenants against the Elements emulator.

sluice collects TENANTS tenants x EVENTS events (interval 5 s); we measure the time until every
tenant is drained, CPU seconds, peak RSS, and the lateness of the slowest tenant (time from start
to its first collected event). In the same run, the original Python collector collects
PEER_TENANTS tenants from the same kind of emulator, as the reference.

    python3 bench/withsecure_tenants.py [--tenants 1000] [--events 1000] [--peer-tenants 50]

The peer needs a checkout of github.com/innovare/withsecure-collector whose `collector/` package
is in PEER_DIR (default /var/tmp/ws-peer) and the Python packages requests, pyyaml, python-dotenv.
Without it, only sluice is measured.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/sluice-target"))
WORK = Path(os.environ.get("WORK", "/var/tmp/sluice-bench-ws"))


def start_emulator(port, tenants, events):
    emu = subprocess.Popen(
        [TARGET / "release/withsecure-emulator", "--listen", f"127.0.0.1:{port}", "--tenants", str(tenants),
         "--events", str(events), "--per-timestamp", "3"],
        stdout=subprocess.PIPE, text=True)
    line = emu.stdout.readline()
    assert line.startswith("listening on"), line
    return emu, line.split()[-1]


def count_ids(path, key):
    ids = set()
    try:
        with open(path) as f:
            for line in f:
                try:
                    ids.add(json.loads(line)[key]["id"] if key else json.loads(line)["id"])
                except (ValueError, KeyError):
                    pass
    except FileNotFoundError:
        pass
    return ids


def count_lines(path):
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def watch(files, events, proc, key, stall=20.0, timeout=900):
    """Polls until every file holds `events` unique ids, or nothing new arrived for `stall`
    seconds (a collector that lost events never gets there). Returns a dict of results."""
    start = time.monotonic()
    first, counts, done = {}, {}, set()
    last_progress = start
    while len(done) < len(files):
        if proc.poll() is not None:
            sys.exit(f"collector exited early with {proc.returncode}")
        now = time.monotonic()
        if now - start > timeout or now - last_progress > stall:
            break
        for f in files:
            if f in done:
                continue
            if f not in first and os.path.exists(f) and os.path.getsize(f) > 0:
                first[f] = now - start
            if f in first:
                # Cheap while running: count lines; ids are checked once at the end.
                n = count_lines(f)
                if n != counts.get(f):
                    counts[f] = n
                    last_progress = time.monotonic()
                if n >= events:
                    done.add(f)
        time.sleep(0.5)
    drained = last_progress - start
    unique = sum(len(count_ids(f, key)) for f in files)
    lines = sum(sum(1 for _ in open(f)) for f in files if os.path.exists(f))
    return dict(drained=drained, slowest=max(first.values()), dups=lines - unique,
                lost=events * len(files) - unique)


def timed(cmd, stats, **kw):
    """Runs cmd under GNU time, which writes user/sys CPU seconds and peak RSS (KiB) to `stats`."""
    return subprocess.Popen(["/usr/bin/time", "-f", "%U %S %M", "-o", str(stats), *map(str, cmd)], **kw)


def read_stats(stats):
    user, system, rss = open(stats).read().split()[-3:]
    return float(user) + float(system), int(rss)


def stop(proc):
    # proc is GNU time; the collector is its child.
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    for pid in children:
        os.kill(int(pid), signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_sluice(tenants, events):
    emu, url = start_emulator(18443, tenants, events)
    d = WORK / "sluice"
    d.mkdir(parents=True)
    start_date = (datetime.now(timezone.utc) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"state_dir: {d}/state", "sinks:", "  out:", "    type: file",
             f'    path: "{d}/out/%TENANCY.jsonl"', "    format: vendor_wrapped", "tenants:"]
    for i in range(tenants):
        lines += [f"  - name: tenant{i}", "    sources:", "      - name: withsecure", "        type: withsecure",
                  f"        api_url: {url}", f"        client_id: client{i}", f"        client_secret: secret{i}",
                  "        interval: 5s", "        rate_limit_per_minute: 600", "        start_mode: fixed",
                  f'        start_date: "{start_date}"', "    sinks: [out]"]
    (d / "sluice.yml").write_text("\n".join(lines) + "\n")
    proc = timed([TARGET / "release/sluice", "run", "-c", d / "sluice.yml", "--log-level", "warn"], d / "stats")
    files = [str(d / "out" / f"tenant{i}.jsonl") for i in range(tenants)]
    result = watch(files, events, proc, "withsecure")
    stop(proc)
    cpu, rss = read_stats(d / "stats")
    emu.kill()
    emu.wait()
    return dict(name="sluice", tenants=tenants, cpu=cpu, rss=rss, **result)


PEER_MAIN = """
import sys
sys.path.insert(0, sys.argv[1])
import collector.authentication as auth, collector.api_client as api
auth.TOKEN_URL = sys.argv[2] + "/as/token.oauth2"
api.API_URL = sys.argv[2]
import collector.main as main
main.main()
"""


def run_peer(tenants, events, peer_dir):
    emu, url = start_emulator(18444, tenants, events)
    d = WORK / "peer"
    d.mkdir(parents=True)
    start_date = (datetime.now(timezone.utc) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    lines = ["clients:"]
    for i in range(tenants):
        lines += [f'  - name: "tenant{i}"', f'    client_id: "client{i}"', f'    client_secret: "secret{i}"',
                  "    interval: 5", "    rate_limit_per_minute: 600", "    start_mode: fixed",
                  f'    start_date: "{start_date}"']
    (d / "config.yml").write_text("\n".join(lines) + "\n")
    proc = timed([sys.executable, "-c", PEER_MAIN, peer_dir, url], d / "stats", cwd=d,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = [str(d / "events" / f"tenant{i}.log") for i in range(tenants)]
    result = watch(files, events, proc, "withsecure")
    stop(proc)
    cpu, rss = read_stats(d / "stats")
    emu.kill()
    emu.wait()
    return dict(name="original Python collector", tenants=tenants, cpu=cpu, rss=rss, **result)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--peer-tenants", type=int, default=50)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "sluice", "-p", "sluice-emulators"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": str(TARGET)})
    subprocess.run(["rm", "-rf", str(WORK)], check=True)
    results = [run_sluice(args.tenants, args.events)]
    peer_dir = Path(os.environ.get("PEER_DIR", "/var/tmp/ws-peer"))
    if (peer_dir / "collector" / "main.py").exists():
        results.append(run_peer(args.peer_tenants, args.events, peer_dir))
    print(f"{args.events} events per tenant, interval 5 s, {os.cpu_count()} cores\n")
    print("| collector | tenants | last event after (s) | events/s | CPU-s | CPU-s per million events | peak RSS (MiB) | slowest tenant's first event (s) | lost | duplicates |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rates = []
    for r in results:
        got = r["tenants"] * args.events - r["lost"]
        rates.append(got / r["drained"])
        print(f"| {r['name']} | {r['tenants']} | {r['drained']:.1f} | {rates[-1]:,.0f} | {r['cpu']:.1f} | "
              f"{r['cpu'] / got * 1e6:.1f} | {r['rss'] / 1024:.0f} | {r['slowest']:.1f} | {r['lost']} | {r['dups']} |")
    if len(results) == 2:
        print(f"\nsluice events/s / original events/s: {rates[0] / rates[1]:.1f}x")


if __name__ == "__main__":
    main()
