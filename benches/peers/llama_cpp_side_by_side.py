"""verbatim's generator against llama.cpp, side by side (issue 16 item 4, issue 19 item 5).

Both engines run the same GGUF, the same rendered ChatML prompt (~700 tokens: numbered quotes
from the demo data, the question and the instruction, as `verbatim ask` builds its prompt) and
generate the same number of tokens greedily (200 by default, past the end-of-turn token), with
the same number of threads (2). Runs are interleaved in one process run (llama.cpp, verbatim,
llama.cpp, verbatim…) after one warm-up each, so load on a shared machine falls on both sides;
the load average is recorded beside each run.

verbatim runs as `examples/generate_speed.rs` (the model loaded once, one generation per line
on its stdin); llama.cpp runs in this process through llama-cpp-python (built from its PyPI
source: see BENCHMARKS.md "Ask" for the build flags).

    python3 benches/peers/llama_cpp_side_by_side.py [--model GGUF] [--tokens 200] [--reps 5]
        [--threads 2] [--plain] [--json OUT.json]

Needs: llama-cpp-python importable (a separate venv is fine: run this script with its python),
and `cargo build --release --example generate_speed` done (or --verbatim BIN).

What is measured, per engine:
- prompt tok/s: prompt tokens / the prompt's forward pass (verbatim: `GenStats::prompt_s`;
  llama.cpp: its own `t_p_eval_ms` counter);
- decode tok/s: generated tokens / the time after the prompt pass (verbatim: `decode_s`, which
  covers sampling, detokenising and one forward per token; llama.cpp: from the first token
  yielded to the last, over generated − 1 tokens);
- time to first token: from the call (tokenisation included) to the first token out.
With `--plain` both run plain greedy; by default both apply a repetition penalty of 1.1 over the
last 64 tokens (`ask`'s default; verbatim also bans repeated 5-grams, which llama.cpp has no
sampler for).
"""

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# `ask`'s system prompt for evidence answers (src/ask/mod.rs, EVIDENCE_SYSTEM).
SYSTEM = (
    "You summarise customer feedback evidence for an analyst. Use only the evidence you are "
    "given: its groups, numbers and quotes. Do not copy the quotes or the evidence lines; say in "
    "your own words what customers say. End every sentence with the numbers of the quotes it "
    "rests on in square brackets. Never write a number that is not in the evidence."
)
QUESTION = "What do customers say about the phone?"


def chatml(system, user):
    """SmolLM2's template (ChatML), as `ChatTemplate::ChatMl.render` writes it."""
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )


def build_prompt(count_tokens, target):
    """Numbered quotes about phones from the demo data until the rendered prompt reaches
    `target` tokens, then the question and the instruction (`Evidence::instruction`)."""
    rows = list(csv.DictReader(open(REPO / "data/uci_sentiment.csv", encoding="utf-8")))
    quotes = [r["text"] for r in rows if r["domain"] == "amazon" and "phone" in r["text"].lower()]
    lines = []
    for q in quotes:
        lines.append(f"[{len(lines) + 1}] {q}")
        first = lines[0][4:].rstrip(".!?")
        user = (
            "\n".join(lines)
            + f"\nQuestion: {QUESTION}\n\nAnswer in 2 or 3 short sentences. Each sentence says "
            "what one quote says, in its words, and ends with the quote's number in square "
            f"brackets, like this: {first} [1]."
        )
        if count_tokens(chatml(SYSTEM, user)) >= target:
            return user
    sys.exit("not enough quotes for the prompt length asked")


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def flags():
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            f = set(line.split(":", 1)[1].split())
            return sorted(x for x in f if x.startswith(("avx512", "amx")) or x in ("avx2", "fma"))
    return []


def run_llama(llm, llama_cpp, prompt, n_tokens, penalty):
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm.ctx)
    t0 = time.perf_counter()
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    first = last = None
    out = []
    for tok in llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=penalty, reset=True):
        now = time.perf_counter()
        if first is None:
            first = now
        last = now
        out.append(tok)
        if len(out) == n_tokens:
            break
    perf = llama_cpp.llama_perf_context(llm.ctx)
    prompt_s = perf.t_p_eval_ms / 1000.0
    return {
        "engine": "llama.cpp",
        "prompt_tokens": len(tokens),
        "prompt_eval_tokens": perf.n_p_eval,
        "prompt_s": prompt_s,
        "generated_tokens": len(out),
        "decode_s": last - first,
        "decode_tokens_timed": len(out) - 1,
        "ttft_s": first - t0,
        "total_s": last - t0,
        "text": llm.detokenize(out).decode("utf-8", "replace")[:160],
    }


def run_verbatim(proc):
    proc.stdin.write("run\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        sys.exit("generate_speed exited: " + proc.stderr.read())
    r = json.loads(line)
    r["decode_tokens_timed"] = r["generated_tokens"]
    return r


def rates(r):
    return {
        "prompt_tps": r["prompt_tokens"] / r["prompt_s"],
        "decode_tps": r["decode_tokens_timed"] / r["decode_s"],
        "ttft_s": r["ttft_s"],
        "total_s": r["total_s"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "models/SmolLM2-135M-Instruct/model.gguf"))
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--prompt-tokens", type=int, default=700)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--verbatim", default=str(REPO / "target/release/examples/generate_speed"))
    ap.add_argument("--json")
    a = ap.parse_args()

    import llama_cpp
    import llama_cpp.llama_cpp as low

    # No AMX: ggml's AMX kernels die with SIGILL on batched prompts on this VM (the issue saw
    # crashes too). GGML_NATIVE=ON compiles them in whatever -DGGML_AMX_* says, so the extra
    # buffer types (where the AMX repacking lives) are turned off at load instead; for Q4_1 there
    # is no other repacked layout, so the plain AVX-512 kernels run, as in a build without AMX.
    default_params = low.llama_model_default_params

    def no_extra_bufts():
        p = default_params()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = no_extra_bufts
    penalty = 1.0 if a.plain else 1.1
    llm = llama_cpp.Llama(
        model_path=a.model,
        n_ctx=2048,
        n_batch=1024,
        n_ubatch=1024,
        n_threads=a.threads,
        n_threads_batch=a.threads,
        verbose=False,
    )
    user = build_prompt(lambda s: len(llm.tokenize(s.encode(), add_bos=False, special=True)), a.prompt_tokens)
    prompt = chatml(SYSTEM, user)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"system": SYSTEM, "user": user}, f)
        prompt_file = f.name
    cmd = [a.verbatim, "--model", a.model, "--prompt", prompt_file, "--tokens", str(a.tokens),
           "--threads", str(a.threads)] + (["--plain"] if a.plain else [])
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)

    # One warm-up each (page cache, allocator, thread pools), not counted.
    run_llama(llm, llama_cpp, prompt, a.tokens, penalty)
    run_verbatim(proc)
    runs = []
    for rep in range(a.reps):
        for engine in ("llama.cpp", "verbatim") if rep % 2 == 0 else ("verbatim", "llama.cpp"):
            load = os.getloadavg()[0]
            r = run_llama(llm, llama_cpp, prompt, a.tokens, penalty) if engine == "llama.cpp" else run_verbatim(proc)
            r["load1_before"] = load
            r.update(rates(r))
            runs.append(r)
            print(f"{engine:9} prompt {r['prompt_tokens']} tok {r['prompt_tps']:7.1f} tok/s  "
                  f"decode {r['generated_tokens']} tok {r['decode_tps']:6.1f} tok/s  "
                  f"ttft {r['ttft_s']:.3f} s  total {r['total_s']:.2f} s  load {load:.2f}", flush=True)
    proc.stdin.close()
    proc.wait()

    med = {}
    for engine in ("llama.cpp", "verbatim"):
        rs = [r for r in runs if r["engine"] == engine]
        med[engine] = {k: statistics.median(r[k] for r in rs) for k in ("prompt_tps", "decode_tps", "ttft_s", "total_s")}
    l, v = med["llama.cpp"], med["verbatim"]
    print(f"\nCPU: {cpu_model()} ({os.cpu_count()} logical CPUs; {' '.join(flags())})")
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{a.threads} threads each; {a.reps} interleaved runs each after one warm-up; medians")
    print(f"prompt: {runs[0]['prompt_tokens']} tokens (llama.cpp) / "
          f"{next(r for r in runs if r['engine'] == 'verbatim')['prompt_tokens']} (verbatim); "
          f"{a.tokens} generated; {'plain greedy' if a.plain else 'greedy, repetition penalty 1.1'}\n")
    print("| engine | prompt tok/s | decode tok/s | time to first token | prompt + 200 tokens |")
    print("|---|--:|--:|--:|--:|")
    for name, m in (("llama.cpp (llama-cpp-python 0.3.36)", l), ("verbatim (candle)", v)):
        print(f"| {name} | {m['prompt_tps']:.0f} | {m['decode_tps']:.1f} | {m['ttft_s']:.2f} s | {m['total_s']:.2f} s |")
    print(f"| **verbatim / llama.cpp** | **{v['prompt_tps'] / l['prompt_tps']:.2f}×** | "
          f"**{v['decode_tps'] / l['decode_tps']:.2f}×** | {v['ttft_s'] / l['ttft_s']:.2f}× the time | "
          f"{v['total_s'] / l['total_s']:.2f}× the time |")
    for engine in ("llama.cpp", "verbatim"):
        t = next(r["text"] for r in runs if r["engine"] == engine)
        print(f"\n{engine} wrote: {t!r}")
    if a.json:
        json.dump({"cpu": cpu_model(), "runs": runs, "medians": med}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
