"""Writes N JSON lines of exactly SIZE bytes (newline included, default 1024) with unique ids.

    python3 bench/gen_lines.py 1000000 > input.jsonl
    python3 bench/gen_lines.py 1000000 512 > input.jsonl

Each line is a Suricata-like alert object, {"id":N,"ts":"...",...,"pad":"xxx…"}, padded so that
every line has the same length; the input size is therefore exactly N * SIZE bytes.
"""
import sys

n = int(sys.argv[1])
size = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
out = sys.stdout.buffer
buf = []
for i in range(n):
    s, ms = divmod(i, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    head = (
        f'{{"id":{i},"ts":"2026-01-01T{h % 24:02d}:{m:02d}:{s:02d}.{ms:03d}000Z","event_type":"alert",'
        f'"src_ip":"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}","src_port":{40000 + i % 20000},'
        f'"dest_ip":"192.168.1.1","dest_port":443,"proto":"TCP",'
        f'"alert":{{"signature_id":{2000000 + i % 1000},"signature":"ET POLICY bench","severity":2}},"pad":"'
    )
    pad = size - len(head) - 3  # closing quote, brace and newline
    if pad < 0:
        sys.exit(f"line size {size} is too small (needs at least {len(head) + 3})")
    buf.append(head + "x" * pad + '"}\n')
    if len(buf) == 8192:
        out.write("".join(buf).encode())
        buf.clear()
out.write("".join(buf).encode())
