"""Spark `local[2]` checks of the adapter (issue 18), run by hand or by CI when pyspark and a
JDK are installed (README, "Spark"):

* partition invariance: 1, 2 and 3 partitions give the same prepared rows, and the same as
  `verbatim prepare` alone on the whole file (vectors bit for bit);
* equivalence: Spark → Parquet → `verbatim ingest --prepared` stores what `verbatim ingest`
  stores from the CSV (ids, redacted texts, pseudonyms, hashes, vectors bit for bit);
* a task that fails once is retried, and the Parquet holds each row once;
* no personal value of the fixture in the Parquet, Spark's local dir or its logs;
* themes on the executors: the workspace's theme model broadcast as a file path, every unit
  placed in Spark (`verbatim assign`), per-unit places = `themes assignments` after `themes
  import`, and counts per theme aggregated in Spark (`theme_stats`) = the workspace's `themes`;
* Spark's fixed cost against the binary alone (printed).

Usage: python check_local.py VERBATIM_BINARY MODELS_DIR REPO_ROOT
"""

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

PACKAGE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, PACKAGE_DIR)
# Spark's Python workers (started by the JVM, which inherits this environment) import it too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (PACKAGE_DIR, os.environ.get("PYTHONPATH")) if p)
# ... with this Python (its venv has pyarrow), not the first `python3` on the PATH.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
import verbatim_spark  # noqa: E402

BIN, MODELS, REPO = sys.argv[1], sys.argv[2], sys.argv[3]
TICKETS = os.path.join(REPO, "tests/fixtures/privacy/tickets.csv")
MAPPING = dict(text="message", id="ticket_id", respondent="email", date="created",
               score="csat", fields=("country", "contact"))
FLAGS = ["--text", "message", "--id", "ticket_id", "--respondent", "email", "--date",
         "created", "--score", "csat", "--field", "country", "--field", "contact"]
ENV = dict(os.environ, VERBATIM_MODELS=MODELS, VERBATIM_PRECISION="fp32")
ENV.pop("VERBATIM_TOKEN", None)
ENV.pop("VERBATIM_MODEL", None)


def verbatim(ws, *args, stdin=None):
    p = subprocess.run([BIN, "-w", ws, *args], input=stdin, capture_output=True, env=ENV)
    if p.returncode != 0:
        raise SystemExit(f"verbatim {' '.join(args)} failed: {p.stderr.decode()}")
    return p.stdout


def stored(ws):
    c = sqlite3.connect(f"file:{ws}/store.sqlite?mode=ro", uri=True)
    rows = c.execute(
        "SELECT v.id, v.text, v.respondent, v.ts, v.score, v.language, v.fields, "
        "v.content_hash, e.vector FROM verbatims v JOIN embeddings e ON e.doc = v.doc "
        "ORDER BY v.id").fetchall()
    c.close()
    return rows


def strings_table(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return pa.table({h: pa.array([r[i] or None for r in body], pa.string())
                     for i, h in enumerate(header)})


def key_of(row):
    return (row["id"], row["text"], row["respondent"], row["content_hash"],
            None if row["vector"] is None else tuple(row["vector"]))


def main():
    tmp = tempfile.mkdtemp(prefix="verbatim-spark-")
    plain, ws = os.path.join(tmp, "plain"), os.path.join(tmp, "ws")
    verbatim(plain, "init", plain)
    verbatim(plain, "ingest", *FLAGS, TICKETS)
    os.makedirs(ws)
    shutil.copy(os.path.join(plain, "verbatim.key"), os.path.join(ws, "verbatim.key"))
    verbatim(ws, "init", ws)
    key = os.path.join(tmp, "prepare.key")
    verbatim(ws, "key", "export", "--for", "prepare", "--out", key)

    # The binary alone, on the whole file.
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, strings_table(TICKETS).schema) as w:
        w.write_table(strings_table(TICKETS))
    t = time.perf_counter()
    out = verbatim(ws, "prepare", "--key", key, *FLAGS, stdin=sink.getvalue())
    alone_s = time.perf_counter() - t
    alone = sorted(key_of(r) for r in pa.ipc.open_stream(out).read_all().to_pylist())

    from pyspark.sql import SparkSession
    local_dir = os.path.join(tmp, "spark-local")
    t = time.perf_counter()
    spark = (SparkSession.builder.master("local[2,2]").appName("verbatim-check")
             .config("spark.local.dir", local_dir)
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .getOrCreate())
    start_s = time.perf_counter() - t
    df = spark.read.option("header", True).csv(TICKETS)
    timings = {}
    for n in (1, 2, 3):
        t = time.perf_counter()
        got = verbatim_spark.prepare(df.repartition(n), binary=BIN, key_path=key,
                                     models_dir=MODELS, env=ENV, **MAPPING).collect()
        timings[n] = time.perf_counter() - t
        got = sorted(key_of(r.asDict()) for r in got)
        assert got == alone, f"{n} partitions differ from the binary alone"
    print(f"partition invariance: 1, 2, 3 partitions == binary alone ({len(alone)} rows)")

    # Spark → Parquet → ingest --prepared == ingest.
    prepared = os.path.join(tmp, "prepared")
    verbatim_spark.prepare(df.repartition(2), binary=BIN, key_path=key, models_dir=MODELS,
                           env=ENV, **MAPPING).write.parquet(prepared)
    verbatim(ws, "ingest", "--prepared", prepared)
    assert stored(ws) == stored(plain), "ingest --prepared differs from ingest"
    again = verbatim(ws, "--json", "ingest", "--prepared", prepared)
    assert b'"stored": 0' in again or b'"stored":0' in again, again
    print("equivalence: Parquet from Spark -> ingest --prepared == ingest; re-run stores 0")

    # Themes on the executors: the model file shipped as a path, each partition's units placed
    # in its task, statistics aggregated by Spark = what the workspace reports.
    model_file = os.path.join(tmp, "themes.json")
    verbatim(ws, "themes", "export-model", "--out", model_file)
    verbatim(ws, "themes", "import", model_file)
    assigned = verbatim_spark.assign(spark.read.parquet(prepared).repartition(2), binary=BIN,
                                     themes_model=model_file, models_dir=MODELS, env=ENV)
    assigned.cache()
    got_units = {(r.id, r.start): (r.theme, r.parent, r.sentiment) for r in assigned.collect()}
    want_units = {}
    for line in verbatim(ws, "themes", "assignments").decode().splitlines():
        r = json.loads(line)
        want_units[(r["id"], r["start"])] = (r["theme"], r["parent"], r["sentiment"])
    assert got_units == want_units, (got_units, want_units)
    stats = {r.node: (r.verbatims, r.units, round(r.share_negative, 6))
             for r in verbatim_spark.theme_stats(assigned).collect()}
    tree = json.loads(verbatim(ws, "--json", "themes"))
    shown = {n["id"]: (n["verbatims"], n["units"], round(n["negative"], 6))
             for p in tree["parents"] for n in [p] + p.get("children", [])}
    assert shown and all(stats[k] == v for k, v in shown.items()), (stats, shown)
    print(f"themes: {len(got_units)} units placed in Spark as the workspace places them; "
          f"counts and sentiment of {len(shown)} nodes aggregated in Spark = `themes`")

    # The uniform sample of `themes export-model --sample`: the same keyed rank as the binary
    # (the value pinned in src/themes/model.rs), the same rows in Spark as in Python.
    assert verbatim_spark.sample_rank("R1001", 7) == 0x9FC31048A5255F2B
    rows = spark.read.parquet(prepared).where("error is null")
    ids = [r.id for r in rows.select("id").collect()]
    k = max(1, len(ids) // 3)
    want = sorted(ids, key=lambda i: (verbatim_spark.sample_rank(i, 7), i))[:k]
    got = [r.id for r in verbatim_spark.sample(rows, k, 7).collect()]
    assert sorted(got) == sorted(want), (got, want)
    print(f"sample: Spark picks the {k} rows of smallest keyed rank, as the binary does")

    # A task that fails once is retried; each row is written once.
    marker = os.path.join(tmp, "failed-once")
    cmd = verbatim_spark._command(BIN, key, [(f, v) for f, v in zip(FLAGS[::2], FLAGS[1::2])],
                                  models_dir=MODELS)

    def flaky(batches):
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("killed on purpose (first attempt)")
        yield from verbatim_spark.prepare_partition(cmd, batches, env=ENV)

    retried = os.path.join(tmp, "retried")
    (df.select("message", "ticket_id", "email", "created", "csat", "country", "contact")
       .repartition(2).mapInArrow(flaky, verbatim_spark.PREPARED_SCHEMA).write.parquet(retried))
    ids = pq.read_table(retried).column("id").to_pylist()
    assert sorted(ids) == sorted(r[0] for r in alone), ids
    print("retry: a failed task re-ran; each row once")

    # No personal value anywhere Spark wrote.
    plain_files = os.path.join(tmp, "prepared-plain")
    verbatim_spark.prepare(df, binary=BIN, key_path=key, models_dir=MODELS, env=ENV,
                           **MAPPING).write.option("compression", "none").parquet(plain_files)
    spark.stop()
    values = set()
    with open(TICKETS, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            values.update(v for v in (r["email"], r["contact"]) if v and len(v) >= 6)
    leaks = []
    for root in (plain_files, local_dir, prepared):
        for d, _, files in os.walk(root):
            for name in files:
                data = open(os.path.join(d, name), "rb").read()
                leaks += [(name, v) for v in values if v.encode() in data]
    assert not leaks, f"personal data written: {leaks}"
    print(f"no personal data: {len(values)} values absent from the Parquet and Spark's local dir")
    print(f"timings: binary alone {alone_s:.2f}s; Spark session start {start_s:.1f}s; "
          + ", ".join(f"{n} partition(s) {s:.1f}s" for n, s in timings.items()))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
