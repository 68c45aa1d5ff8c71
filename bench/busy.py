"""What else the machine is doing: CPU used by other processes, to tell a quiet measurement from
a disturbed one on a shared machine.

    python3 bench/busy.py snapshot FILE            # records every user process's CPU time
    python3 bench/busy.py since FILE [PID...]      # prints CPU-s other processes used since then
    python3 bench/busy.py wait-quiet MAX_SECONDS   # waits until others use < 0.15 core (or gives up)

Kernel threads are not counted (writeback done for the benchmarked process runs there), nor the
PIDs given, nor this script and its parent (the benchmark's shell).
"""
import json
import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")
PF_KTHREAD = 0x00200000


def cpu_by_pid():
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[6]) & PF_KTHREAD:  # flags, field 9 of stat
            continue
        out[int(name)] = int(fields[11]) + int(fields[12])  # utime + stime
    return out


def others_since(before, exclude):
    now = cpu_by_pid()
    exclude = set(exclude) | {os.getpid(), os.getppid()}
    return sum(t - before.get(pid, 0) for pid, t in now.items() if pid not in exclude and t >= before.get(pid, 0)) / TICKS


def main():
    cmd = sys.argv[1]
    if cmd == "snapshot":
        with open(sys.argv[2], "w") as f:
            json.dump(cpu_by_pid(), f)
    elif cmd == "since":
        with open(sys.argv[2]) as f:
            before = {int(k): v for k, v in json.load(f).items()}
        print(f"{others_since(before, [int(p) for p in sys.argv[3:]]):.2f}")
    elif cmd == "wait-quiet":
        deadline = time.time() + float(sys.argv[2])
        while True:
            before = cpu_by_pid()
            time.sleep(1)
            used = others_since(before, [])
            if used < 0.15:
                return
            if time.time() > deadline:
                print(f"machine still busy ({used:.2f} cores used by other processes); measuring anyway",
                      file=sys.stderr)
                return
    else:
        sys.exit(f"unknown command {cmd}")


main()
