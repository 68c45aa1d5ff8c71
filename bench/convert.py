"""Benchmark: decoder -> encoder throughput of `sluice convert` on N events per pair, next to the
floor (serde_json parse + serialize of the same bytes, `examples/json_floor.rs`) and, for the
pairs they cover, the original Python IDMEFv2 connectors on the same input.

    python3 bench/convert.py [--events 1000000] [--peer-events 100000]

The peer needs a checkout of github.com/IDMEFv2/idmefv2-connectors whose `idmefv2/` package is in
PEER_DIR (default /var/tmp/idmef-peer); without it only sluice and the floor are measured.
"""
import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/sluice-target"))
WORK = Path(os.environ.get("WORK", "/var/tmp/sluice-bench-convert"))
FIXTURES = ROOT / "src" / "vendors"


def generate(vendor, n, path):
    """n events shaped like the fixtures of `vendor`, each with its own id, addresses and time."""
    if vendor == "withsecure":
        templates = [json.loads(p.read_text()) for p in sorted((FIXTURES / "withsecure" / "fixtures").glob("*.json"))]
    else:
        name = {"suricata": "suricata/fixtures/eve.jsonl", "wazuh": "wazuh/fixtures/alerts.jsonl"}[vendor]
        templates = [json.loads(l) for l in (FIXTURES / name).read_text().splitlines() if l.strip()]
        if vendor == "suricata":
            templates = [t for t in templates if t.get("event_type") == "alert" and t.get("src_ip")]
    rnd = random.Random(1)
    with open(path, "w") as f:
        for i in range(n):
            e = dict(templates[i % len(templates)])
            if vendor == "suricata":
                e["src_ip"] = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
                e["flow_id"] = i
            elif vendor == "wazuh":
                e["id"] = f"{1700000000 + i}.{rnd.randrange(10**6)}"
            else:
                e["id"] = f"bench-{i}"
            f.write(json.dumps(e, separators=(",", ":")) + "\n")


def timed(cmd, stdin_path, stdout=subprocess.DEVNULL):
    stats = WORK / "stats"
    with open(stdin_path) as stdin:
        subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(stats), *map(str, cmd)],
                       stdin=stdin, stdout=stdout, check=True)
    wall, user, system, rss = open(stats).read().split()[-4:]
    return float(wall), float(user) + float(system), int(rss)


PEER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import idmefv2  # the PyPI package of the same name may be installed: add the connectors to it
idmefv2.__path__.insert(0, sys.argv[1] + "/idmefv2")
from idmefv2.connectors.suricata.suricataconverter import SuricataConverter
from idmefv2.connectors.wazuh.wazuhconverter import WazuhConverter
converter = {"suricata": SuricataConverter, "wazuh": WazuhConverter}[sys.argv[2]]()
out = sys.stdout
for line in sys.stdin:
    ok, msg = converter.convert(json.loads(line))
    if ok:
        out.write(json.dumps(msg) + "\\n")
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--peer-events", type=int, default=100_000)
    args = ap.parse_args()
    env = {**os.environ, "CARGO_TARGET_DIR": str(TARGET)}
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "sluice", "--bin", "sluice", "--example", "json_floor"],
                   cwd=ROOT, check=True, env=env)
    WORK.mkdir(parents=True, exist_ok=True)
    peer_dir = Path(os.environ.get("PEER_DIR", "/var/tmp/idmef-peer"))
    rows = []
    for vendor, fmt in [("suricata", "idmefv2"), ("wazuh", "ecs"), ("withsecure", "ecs"), ("wazuh", "idmefv2")]:
        data = WORK / f"{vendor}.jsonl"
        if not data.exists() or sum(1 for _ in open(data)) != args.events:
            generate(vendor, args.events, data)
        wall, cpu, rss = timed([TARGET / "release/sluice", "convert", "--decoder", vendor, "--format", fmt], data)
        fwall, fcpu, _ = timed([TARGET / "release/examples/json_floor"], data)
        peer = None
        if fmt == "idmefv2" and (peer_dir / "idmefv2" / "connectors").exists():
            small = WORK / f"{vendor}.peer.jsonl"
            with open(data) as src, open(small, "w") as dst:
                for _, line in zip(range(args.peer_events), src):
                    dst.write(line)
            pwall, _, _ = timed([sys.executable, "-c", PEER, peer_dir, vendor], small)
            peer = args.peer_events / pwall
        rows.append((vendor, fmt, args.events / wall, cpu / args.events * 1e6, rss, args.events / fwall, peer))
    print(f"{args.events:,} events per pair ({os.cpu_count()} cores)\n")
    print("| decoder → format | sluice events/s | CPU-µs per event | peak RSS (MiB) | floor events/s | sluice ÷ floor time | Python connector events/s | sluice ÷ Python |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for vendor, fmt, rate, cpu_us, rss, floor, peer in rows:
        peer_txt = f"{peer:,.0f}" if peer else "—"
        ratio = f"{rate / peer:.0f}×" if peer else "—"
        print(f"| {vendor} → {fmt} | {rate:,.0f} | {cpu_us:.1f} | {rss / 1024:.0f} | {floor:,.0f} | {floor / rate:.2f} | {peer_txt} | {ratio} |")


if __name__ == "__main__":
    main()
