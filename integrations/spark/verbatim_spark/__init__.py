"""Run `verbatim prepare` over a Spark DataFrame, one process per partition.

All logic stays in the `verbatim` binary: this module only hands each partition's Arrow
batches to `verbatim prepare` on its standard input (`DataFrame.mapInArrow`) and yields the
prepared batches it writes on its standard output. The result is a DataFrame of the prepared
schema (`PREPARED_SCHEMA`, version 2), to be written as Parquet and stored with
`verbatim ingest --prepared DIR [--shard i/S]`.

The key file (`verbatim key export --for prepare`) must be a path every executor can read
(a mounted secret); it is never put in Spark configuration or in the job's arguments' values.
"""

import hashlib
import os
import struct
import subprocess
import threading

import pyarrow as pa

__all__ = ["ASSIGNED_SCHEMA", "PREPARED_SCHEMA", "assign", "prepare", "prepare_partition",
           "sample", "sample_rank", "theme_stats"]

#: Prefix of the sample's keyed hash (`src/themes/model.rs`, `sample_rank`).
SAMPLE_PREFIX = b"verbatim-sample-1\0"


def sample_rank(verbatim_id, seed):
    """The keyed rank of a verbatim id in the uniform sample `verbatim themes export-model
    --sample N --sample-seed SEED` discovers on: the first 8 bytes (big-endian) of SHA-256 over
    the prefix, the seed (8 bytes little-endian) and the id's UTF-8 bytes."""
    h = hashlib.sha256(SAMPLE_PREFIX + struct.pack("<Q", seed) + verbatim_id.encode("utf-8"))
    return int.from_bytes(h.digest()[:8], "big")


def sample(df, n, seed, id_col="id"):
    """The uniform sample of `n` rows of `df` that `verbatim themes export-model --sample n
    --sample-seed seed` picks: the rows of smallest `sample_rank` of their (stored) id, ties by
    id. Run it on prepared rows (their `id` is the id the workspace stores)."""
    from pyspark.sql import functions as F

    prefix = F.lit(bytearray(SAMPLE_PREFIX + struct.pack("<Q", seed)))
    rank = F.substring(F.sha2(F.concat(prefix, F.encode(F.col(id_col), "UTF-8")), 256), 1, 16)
    return df.withColumn("_rank", rank).orderBy("_rank", id_col).limit(n).drop("_rank")

#: The prepared schema (version 2) as Spark DDL, column for column what `verbatim prepare`
#: writes (see `src/workspace/prepare/schema.rs`): version 2 adds each row's opinion units
#: (spans as JSON, their vectors one after the other, the rule that cut them).
PREPARED_SCHEMA = (
    "line long, id string, text string, respondent string, respondent_key string, "
    "ts long, score double, language string, fields string, content_hash string, "
    "pii_kinds string, vector array<float>, error string, schema_version int, "
    "model string, key_id string, units string, unit_vectors array<float>, "
    "units_input string"
)


#: What `verbatim assign` writes, one row per opinion unit (see
#: `src/workspace/prepare/assign.rs`): the theme (`C<n>`, null: in no theme) and parent
#: (`P<n>`) the model places it in, its sentiment and score, the sentiment head's neutral band
#: and the theme model's digest.
ASSIGNED_SCHEMA = (
    "id string, unit int, start long, end long, theme string, parent string, "
    "sentiment string, score float, neutral_band float, theme_model string"
)


def _command(binary, key_path, mapping, model=None, models_dir=None, chunk=None):
    cmd = [binary, "--quiet"]
    if model:
        cmd += ["--model", model]
    if models_dir:
        cmd += ["--models", models_dir]
    cmd += ["prepare", "--key", key_path]
    for flag, value in mapping:
        cmd += [flag, value]
    if chunk:
        cmd += ["--chunk", str(chunk)]
    return cmd


def prepare_partition(cmd, batches, env=None):
    """Pipes one partition's record batches through `cmd` (a `verbatim prepare` command line)
    and yields the prepared batches. An empty partition starts no process."""
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    failure = []

    def feed():
        # A thread writes while the caller reads: `prepare` reads its whole input before it
        # writes, but a pipe buffer must never be what the two wait on.
        try:
            with pa.ipc.new_stream(proc.stdin, first.schema) as w:
                w.write_batch(first)
                for b in batches:
                    w.write_batch(b)
        except Exception as e:  # the process died: its stderr says why
            failure.append(e)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    stderr = []
    t_err = threading.Thread(target=lambda: stderr.append(proc.stderr.read()))
    t_err.start()
    t_in = threading.Thread(target=feed)
    t_in.start()
    try:
        reader = pa.ipc.open_stream(proc.stdout)
        for b in reader:
            yield b
    finally:
        t_in.join()
        code = proc.wait()
        t_err.join()
    if code != 0 or failure:
        msg = (stderr[0] if stderr else b"").decode("utf-8", "replace").strip()
        raise RuntimeError(f"verbatim prepare exited {code}: {msg or failure}")


def prepare(
    df,
    *,
    binary,
    key_path,
    text,
    id=None,
    respondent=None,
    date=None,
    score=None,
    fields=(),
    language=None,
    model=None,
    models_dir=None,
    chunk=None,
    env=None,
):
    """The prepared DataFrame of `df`: `verbatim prepare` run on every partition with the
    column mapping given (the same meaning as `verbatim ingest`'s flags). `binary`,
    `key_path` and `models_dir` are paths on the executors."""
    mapping = [("--text", c) for c in ([text] if isinstance(text, str) else text)]
    for flag, value in (("--id", id), ("--respondent", respondent), ("--date", date),
                        ("--score", score), ("--language", language)):
        if value:
            mapping.append((flag, value))
    mapping += [("--field", f) for f in fields]
    columns = sorted({v for _, v in mapping})
    cmd = _command(binary, key_path, mapping, model, models_dir, chunk)
    env = dict(env) if env is not None else None

    def run(batches):
        yield from prepare_partition(cmd, batches, env=env or os.environ.copy())

    return df.select(*columns).mapInArrow(run, PREPARED_SCHEMA)


def assign(prepared, *, binary, themes_model, models_dir=None, model=None, chunk=None, env=None):
    """The units of a prepared DataFrame (`prepare`'s output, or the Parquet it wrote read
    back) placed in a theme model's tree: `verbatim assign --themes-model FILE` run on every
    partition, one output row per unit (`ASSIGNED_SCHEMA`). `themes_model` is the file
    `verbatim themes export-model [--sample N]` wrote, at a path every executor can read (ship
    it with the job, like the key file); `model` the workspace's embedding model."""
    cmd = [binary, "--quiet"]
    if model:
        cmd += ["--model", model]
    if models_dir:
        cmd += ["--models", models_dir]
    cmd += ["assign", "--themes-model", themes_model]
    if chunk:
        cmd += ["--chunk", str(chunk)]
    env = dict(env) if env is not None else None
    columns = [c.split(" ")[0] for c in PREPARED_SCHEMA.split(", ")]

    def run(batches):
        yield from prepare_partition(cmd, batches, env=env or os.environ.copy())

    return prepared.select(*columns).mapInArrow(run, ASSIGNED_SCHEMA)


def theme_stats(assigned):
    """Per theme node (children and parents), from `assign`'s rows: `verbatims` (distinct ids
    with a unit in it), `units`, and the sentiment mix of its verbatims — each verbatim read by
    the mean score of its units in the node, as `verbatim themes` does (`negative`, `neutral`,
    `positive` counts, `share_negative`). Equal to what a workspace holding the rows reports
    after `themes import` of the same model."""
    from pyspark.sql import functions as F

    nodes = (assigned.select("id", "score", "neutral_band", F.col("theme").alias("node"))
             .union(assigned.select("id", "score", "neutral_band", F.col("parent").alias("node")))
             .where(F.col("node").isNotNull()))
    per_verbatim = nodes.groupBy("node", "id").agg(
        F.avg("score").alias("mean"), F.count("*").alias("units"),
        F.first("neutral_band").alias("band"))
    polarity = (F.when(F.col("mean") >= F.col("band"), "positive")
                .when(F.col("mean") <= -F.col("band"), "negative").otherwise("neutral"))
    per_verbatim = per_verbatim.withColumn("polarity", polarity)
    count = lambda p: F.sum(F.when(F.col("polarity") == p, 1).otherwise(0)).alias(p)  # noqa: E731
    return (per_verbatim.groupBy("node")
            .agg(F.count("*").alias("verbatims"), F.sum("units").alias("units"),
                 count("negative"), count("neutral"), count("positive"))
            .withColumn("share_negative", F.col("negative") / F.col("verbatims"))
            .orderBy("node"))
