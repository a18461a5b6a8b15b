"""The cost model of the Spark path (issue 18, item 8): wall time of each stage against the
number of rows N and the executors E (`local[E]`), fitted per stage as fixed + per-row cost,
and extrapolated to 5M and 50M rows (BENCHMARKS.md, "Spark: a cost model").

Stages, as a nightly batch runs them:

1. `prepare` (Spark, E executors): the JSONL read, `verbatim prepare` per partition, Parquet
   written;
2. `ingest --prepared` (the workspace's node): the Parquet stored and indexed;
3. `themes export-model --sample S` (the workspace's node): units of the stored rows, the tree
   discovered on a uniform sample of S verbatims;
4. `assign` (Spark, E executors): every unit placed with the model broadcast as a path, counts
   per theme aggregated (`theme_stats`).

Usage (pyspark 4.3 + a JDK 17, as `make test-spark` installs them):

    target/spark-venv/bin/python benches/spark_cost.py target/release/verbatim models \\
        ../shared/data/chitchat_utterances.jsonl.gz --n 2000 10000 --executors 1 2

Prints one line per (E, N, stage) and the fit; `--json FILE` writes the measurements. The data
is read at run time and never copied into the repository.
"""

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.join(HERE, "..", "integrations", "spark")
sys.path.insert(0, PACKAGE_DIR)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (PACKAGE_DIR, os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
import verbatim_spark  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("models")
    ap.add_argument("data", help="JSONL(.gz) with `id` and `text`")
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 10000])
    ap.add_argument("--executors", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sample", type=int, default=2000,
                    help="verbatims the tree is discovered on (at most N)")
    ap.add_argument("--json", help="write the measurements here")
    a = ap.parse_args()
    env = dict(os.environ, VERBATIM_MODELS=a.models, VERBATIM_PRECISION="fp32")
    env.pop("VERBATIM_TOKEN", None)
    env.pop("VERBATIM_MODEL", None)

    def verbatim(ws, *args):
        p = subprocess.run([a.binary, "-q", "-w", ws, *args], capture_output=True, env=env)
        if p.returncode != 0:
            raise SystemExit(f"verbatim {' '.join(args)}: {p.stderr.decode()}")
        return p.stdout

    tmp = tempfile.mkdtemp(prefix="verbatim-cost-")
    opener = gzip.open if a.data.endswith(".gz") else open
    rows_file = os.path.join(tmp, "rows.jsonl")
    with opener(a.data, "rt", encoding="utf-8") as f, open(rows_file, "w") as out:
        for i, line in enumerate(f):
            if i >= max(a.n):
                break
            r = json.loads(line)
            out.write(json.dumps({"id": str(r["id"]), "text": r["text"]}) + "\n")
    # One key for every workspace: a key made once, exported for prepare.
    home = os.path.join(tmp, "home")
    verbatim(home, "init", home)
    key = os.path.join(tmp, "prepare.key")
    verbatim(home, "key", "export", "--for", "prepare", "--out", key)

    from pyspark.sql import SparkSession

    results = []
    for e in a.executors:
        t = time.perf_counter()
        spark = (SparkSession.builder.master(f"local[{e}]").appName(f"verbatim-cost-{e}")
                 .config("spark.local.dir", os.path.join(tmp, f"spark-{e}"))
                 .config("spark.ui.enabled", "false")
                 .config("spark.sql.shuffle.partitions", str(e))
                 .getOrCreate())
        start_s = time.perf_counter() - t
        print(f"local[{e}]: session start {start_s:.1f}s", flush=True)
        results.append(dict(executors=e, n=0, stage="session", seconds=start_s))
        # Warm-up: the Python workers start on the first job.
        spark.range(e * 2).repartition(e).rdd.map(lambda x: x).count()
        for n in a.n:
            df = spark.read.json(rows_file).limit(n).repartition(e)
            prepared = os.path.join(tmp, f"prepared-{e}-{n}")
            t = time.perf_counter()
            verbatim_spark.prepare(df, binary=a.binary, key_path=key, models_dir=a.models,
                                   env=env, text="text", id="id").write.parquet(prepared)
            stages = {"prepare": time.perf_counter() - t}
            ws = os.path.join(tmp, f"ws-{e}-{n}")
            os.makedirs(ws)
            shutil.copy(os.path.join(home, "verbatim.key"), os.path.join(ws, "verbatim.key"))
            verbatim(ws, "init", ws)
            t = time.perf_counter()
            verbatim(ws, "ingest", "--prepared", prepared)
            stages["ingest --prepared"] = time.perf_counter() - t
            model = os.path.join(tmp, f"themes-{e}-{n}.json")
            t = time.perf_counter()
            verbatim(ws, "themes", "export-model", "--sample", str(min(a.sample, n)),
                     "--out", model)
            stages["themes export-model"] = time.perf_counter() - t
            t = time.perf_counter()
            assigned = verbatim_spark.assign(spark.read.parquet(prepared).repartition(e),
                                             binary=a.binary, themes_model=model,
                                             models_dir=a.models, env=env)
            nodes = verbatim_spark.theme_stats(assigned).collect()
            stages["assign + theme_stats"] = time.perf_counter() - t
            for stage, s in stages.items():
                print(f"local[{e}] N={n}: {stage} {s:.1f}s ({n / s:.0f} rows/s)", flush=True)
                results.append(dict(executors=e, n=n, stage=stage, seconds=s))
            print(f"  {len(nodes)} theme nodes; load {os.getloadavg()[0]:.1f}", flush=True)
            shutil.rmtree(ws)
            shutil.rmtree(prepared)
        spark.stop()

    print("\nfit: seconds = fixed + per_row * N (least squares over N)")
    for e in a.executors:
        for stage in ("prepare", "ingest --prepared", "themes export-model",
                      "assign + theme_stats"):
            pts = [(r["n"], r["seconds"]) for r in results
                   if r["executors"] == e and r["stage"] == stage]
            if len(pts) < 2:
                continue
            mx = sum(x for x, _ in pts) / len(pts)
            my = sum(y for _, y in pts) / len(pts)
            b = (sum((x - mx) * (y - my) for x, y in pts)
                 / max(1e-12, sum((x - mx) ** 2 for x, _ in pts)))
            c = my - b * mx
            print(f"local[{e}] {stage}: fixed {c:.1f}s + {b * 1000:.2f} ms/row")
            results.append(dict(executors=e, stage=stage, fixed_s=c, per_row_ms=b * 1000))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(load=os.getloadavg(), results=results), f, indent=1)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
