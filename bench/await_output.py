"""Waits until a running process has written a whole output file, then reports its cost.

    python3 bench/await_output.py PID OUTPUT BYTES START TIMEOUT

Polls OUTPUT every 10 ms until it holds at least BYTES bytes. START is the wall-clock time
(seconds since the epoch, as in bash's $EPOCHREALTIME) at which PID was started. At completion
it prints one line, "WALL CPU RSS_KIB": seconds since START, the user+system CPU seconds PID has
used so far (all its threads, /proc/PID/stat), and its peak resident set (VmHWM). The process is
measured up to completion, so its shutdown is not counted. Exits 1 if PID dies first, 2 on
TIMEOUT seconds.
"""
import os
import sys
import time

pid, out, want, start, timeout = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
ticks = os.sysconf("SC_CLK_TCK")


def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


while True:
    try:
        size = os.stat(out).st_size
    except FileNotFoundError:
        size = 0
    if size >= want:
        break
    now = time.time()
    if not alive():
        sys.exit(f"process {pid} exited before {out} was complete ({size} of {want} bytes)")
    if now - start > timeout:
        sys.exit(2)
    time.sleep(0.01)
wall = time.time() - start
with open(f"/proc/{pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15 of stat)
rss = 0
with open(f"/proc/{pid}/status") as f:
    for line in f:
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1])
print(f"{wall:.3f} {cpu:.2f} {rss}")
