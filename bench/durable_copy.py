"""The durable-write ceiling: copies INPUT to OUTPUT in CHUNK-byte pieces, fdatasync after each,
one thread, as a sink that fsyncs every batch must at least do.

    python3 bench/durable_copy.py INPUT OUTPUT CHUNK
"""
import os
import sys

src, dst, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
fin = os.open(src, os.O_RDONLY)
fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
buf = bytearray(chunk)
view = memoryview(buf)
while True:
    n = os.readv(fin, [buf])
    if n == 0:
        break
    written = 0
    while written < n:
        written += os.write(fout, view[written:n])
    os.fdatasync(fout)
os.close(fout)
