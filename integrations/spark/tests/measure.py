"""prepare vs ingest throughput, side by side (A, B, A, B…), on the same rows: `verbatim
ingest` of a CSV into a fresh workspace, `verbatim prepare` of the same rows as Arrow IPC, and
`verbatim ingest --prepared` of what prepare wrote. Prints rows/s per round and the load.

Usage: python measure.py VERBATIM_BINARY MODELS_DIR CSV ROUNDS -- MAPPING FLAGS…
"""

import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pyarrow as pa

BIN, MODELS, CSV, ROUNDS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
FLAGS = sys.argv[sys.argv.index("--") + 1:]
ENV = dict(os.environ, VERBATIM_MODELS=MODELS, VERBATIM_PRECISION="fp32")


def run(*args, stdin=None):
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, env=ENV)
    if p.returncode not in (0, 1):
        raise SystemExit(f"{args}: {p.stderr.decode()}")
    return p.stdout


with open(CSV, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
header, body = rows[0], rows[1:]
table = pa.table({h: pa.array([r[i] or None for r in body], pa.string())
                  for i, h in enumerate(header)})
sink = io.BytesIO()
with pa.ipc.new_stream(sink, table.schema) as w:
    w.write_table(table)
ipc = sink.getvalue()
n = len(body)
tmp = tempfile.mkdtemp()
print(f"{n} rows; load before: {os.getloadavg()}")
for r in range(ROUNDS):
    ws = os.path.join(tmp, f"ws{r}")
    run("-w", ws, "init", ws)
    t = time.perf_counter()
    run("-w", ws, "ingest", *FLAGS, CSV)
    ingest_s = time.perf_counter() - t
    key = os.path.join(tmp, f"k{r}")
    run("-w", ws, "key", "export", "--for", "prepare", "--out", key)
    t = time.perf_counter()
    out = run("prepare", "--key", key, *FLAGS, stdin=ipc)
    prepare_s = time.perf_counter() - t
    ws2 = os.path.join(tmp, f"wp{r}")
    os.makedirs(os.path.join(ws2, "p"))
    shutil.copy(os.path.join(ws, "verbatim.key"), os.path.join(ws2, "verbatim.key"))
    run("-w", ws2, "init", ws2)
    open(os.path.join(ws2, "p", "part-0.arrow"), "wb").write(out)
    t = time.perf_counter()
    run("-w", ws2, "ingest", "--prepared", os.path.join(ws2, "p"))
    stored_s = time.perf_counter() - t
    print(f"round {r}: ingest {n / ingest_s:.0f} rows/s ({ingest_s:.2f}s), prepare "
          f"{n / prepare_s:.0f} rows/s ({prepare_s:.2f}s), ingest --prepared "
          f"{n / stored_s:.0f} rows/s ({stored_s:.2f}s); load {os.getloadavg()[0]:.2f}")
shutil.rmtree(tmp)
