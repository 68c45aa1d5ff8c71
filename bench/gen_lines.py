"""Writes N JSON lines of about 1 KiB with unique ids (a Suricata-like alert, padded)."""
import json
import sys

n = int(sys.argv[1])
out = sys.stdout
pad = "x" * 700
for i in range(n):
    out.write(json.dumps({
        "id": i, "timestamp": "2025-01-01T00:00:00.000000+0000", "event_type": "alert",
        "src_ip": "10.0.0.1", "src_port": 40000 + i % 20000, "dest_ip": "192.168.1.1", "dest_port": 443,
        "proto": "TCP", "alert": {"signature_id": 2000000 + i % 1000, "signature": "ET POLICY bench", "severity": 2},
        "pad": pad,
    }, separators=(",", ":")))
    out.write("\n")
