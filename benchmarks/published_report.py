"""End-to-end error on the development set: every published measurement in
benchmarks/published_devset.yaml against the model, with each entry's framework.

Prints one row per point and the median / p90 |error| per category and overall; `--write`
regenerates docs/validation/published.md. `--framework NAME` forces one framework on every entry
(to see what the framework model contributes); `--set path=value` applies scenario overrides.

Categories: prefill (TTFT of one request), decode (per-step time or throughput), layer (kernel
times of one layer, no framework), serving (offline max-throughput runs, all requests queued at
t = 0), run through `roofline serve` (continuous batching, as benchmarks/bench_serve.py maps
trtllm-bench's defaults), or with `--static` through the static-batch estimate (batch = the
largest that fits, capped at 2048; output tokens/s = batch x OSL / (TTFT + (OSL - 1) x TPOT)).

Run:  python benchmarks/published_report.py [--write] [--framework hf] [--set runtime.overlap=overlap]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

import roofline
from roofline.simulator.results import op_table
from roofline.simulator.scenario import TRANSFORMERS_FIELDS

ROOT = Path(__file__).resolve().parent.parent
DEVSET = ROOT / "benchmarks" / "published_devset.yaml"
OUT = ROOT / "docs" / "validation" / "published.md"
TARGET = {"median": 0.08, "p90": 0.25}  # issue 11's end-to-end target


def _sim(doc, overrides):
    return roofline.simulate(doc, overrides)


def _runtime(entry, forced, **extra):
    """The runtime section of an entry's scenario: its framework, or `forced`, and `extra`; the
    fields only transformers reads are dropped under another framework."""
    runtime = {"framework": forced or entry["framework"], **extra}
    if runtime["framework"] != "transformers":
        for field in TRANSFORMERS_FIELDS:
            runtime.pop(field.removeprefix("runtime."), None)
    return runtime


def prefill_doc(entry, prompt: int, runtime: dict, methods=()) -> dict:
    """One prompt of a prefill-latency table at batch 1 (benchmarks/methods_report.py runs its
    methods' tables the same way, with and without the method)."""
    return {
        "model": entry["model"],
        "hardware": entry["hardware"],
        "runtime": runtime,
        "methods": list(methods),
        "workload": {"batch": 1, "prompt_tokens": prompt, "output_tokens": 1},
    }


def vllm_prefill(entry, forced, overrides, static=False):
    for prompt, measured in entry["points"].items():
        runtime = _runtime(entry, forced, **entry.get("runtime", {}))
        rec = _sim(prefill_doc(entry, prompt, runtime), overrides).records()[0]
        label = entry.get("label", "vLLM prefill")
        yield "prefill", f"{label} {prompt // 1000}K, A100", rec["ttft_s"], measured, "s"


def shadowkv_layers(entry, forced, overrides, static=False):
    for prompt in entry["attention_ms"]:
        doc = {
            "model": entry["model"],
            "hardware": entry["hardware"],
            "runtime": {"framework": "kernel"},
            "workload": {"batch": 1, "prompt_tokens": prompt, "output_tokens": 1},
        }
        res = _sim(doc, overrides)
        table = op_table(res, 0, "prefill")
        attn = sum(o["time_s"] for o in table if o["kind"] == "attention_prefill") / 32 * 1e3
        ffn = sum(o["time_s"] for o in table if o["name"] in ("ffn_up", "ffn_act", "ffn_down")) / 32 * 1e3
        k = prompt // 1024
        yield "layer", f"ShadowKV attention/layer {k}K", attn, entry["attention_ms"][prompt], "ms"
        yield "layer", f"ShadowKV FFN/layer {k}K", ffn, entry["ffn_ms"][prompt], "ms"


def decode_points(entry, runtime, overrides=()):
    """(context in K, batch, measured, record) of each point of a decode-throughput table (`ctx_k`:
    {K tokens: {batch: tokens/s}}, None = out of memory, skipped): 128 tokens decoded after a
    prompt of K x `kilo` tokens prefilled in 8K chunks, with the entry's `method` if it has one
    (benchmarks/methods_report.py reads methods' tables the same way)."""
    for ctx_k, row in entry["ctx_k"].items():
        for batch, measured in row.items():
            if measured is None:
                continue
            doc = {
                "model": entry["model"],
                "hardware": entry["hardware"],
                "runtime": runtime,
                "methods": [entry["method"]] if "method" in entry else [],
                "workload": {
                    "batch": batch,
                    "prompt_tokens": ctx_k * entry["kilo"],
                    "output_tokens": 128,
                    "prefill_chunk_tokens": 8192,
                },
            }
            yield ctx_k, batch, measured, _sim(doc, overrides).records()[0]


def decode_latency(entry, forced, overrides, static=False):
    """Per-token decode latency of one batch-1 generation, in each of the entry's `variants` (a
    variant's runtime may name its own framework; `--framework` overrides it too)."""
    for name, variant in entry["variants"].items():
        own = {"framework": entry["framework"], **variant["runtime"]}
        runtime = _runtime(own, forced, **{k: v for k, v in own.items() if k != "framework"})
        doc = {
            "model": entry["model"],
            "hardware": entry["hardware"],
            "dtype": entry["dtype"],
            "runtime": runtime,
            "workload": {
                "batch": 1,
                "prompt_tokens": entry["prompt_tokens"],
                "output_tokens": entry["output_tokens"],
            },
        }
        rec = _sim(doc, overrides).records()[0]
        yield (
            "decode",
            f"{entry['label']} {name}",
            rec["tpot_s"] * 1e3,
            variant["ms"],
            "ms",
            runtime["framework"],
        )


def shadowkv_decode(entry, forced, overrides, static=False):
    for ctx_k, batch, measured, rec in decode_points(entry, _runtime(entry, forced), overrides):
        label = f"ShadowKV baseline {entry['label']} decode {ctx_k}K x{batch}"
        yield "decode", label, rec["decode_tokens_per_s"], measured, "tok/s"


def cp_paper(entry, forced, overrides, static=False):
    # Each of the entry's layouts (name -> parallelism) at each of its prompt lengths: TTFT and TTIT.
    for name, par in entry["layouts"].items():
        for prompt in entry["ttft_ms"][name]:
            doc = {
                "model": entry["model"],
                "hardware": entry["hardware"],
                "parallelism": par,
                "dtype": entry["dtype"],
                "runtime": _runtime(entry, forced, **entry.get("runtime", {})),
                "workload": {"batch": 1, "prompt_tokens": prompt, "output_tokens": 64},
            }
            rec = _sim(doc, overrides).records()[0]
            k = prompt // 1024
            yield (
                "prefill",
                f"{entry.get('label', 'CP paper')} {name} TTFT {k}K",
                rec["ttft_s"] * 1e3,
                entry["ttft_ms"][name][prompt],
                "ms",
            )
            measured = entry["decode_ms_per_token"][name][prompt]
            yield (
                "decode",
                f"{entry.get('label', 'CP paper')} {name} decode {k}K",
                rec["tpot_s"] * 1e3,
                measured,
                "ms",
            )


def _batch_throughput(doc, overrides, batch: int, isl: int, osl: int):
    """Output tokens/s of one static batch of `batch` requests of isl / osl tokens."""
    doc = {**doc, "workload": {"batch": batch, "prompt_tokens": isl, "output_tokens": osl}}
    rec = _sim(doc, overrides).records()[0]
    return batch * osl / (rec["ttft_s"] + (osl - 1) * rec["tpot_s"])


def _static_throughput(doc, overrides, isl, osl):
    """Output tokens/s of the largest static batch that fits (capped at 2048 sequences)."""
    probe = _sim(doc, overrides).records()[0]
    batch = int(max(1, min(2048, probe["max_batch"] or 1)))
    return _batch_throughput(doc, overrides, batch, isl, osl)


def trtllm_row_doc(entry, row: dict, isl: int, osl: int, forced=None) -> dict:
    """One TensorRT-LLM throughput row's scenario as benchmarks/bench_serve.py runs it (trtllm-bench's
    defaults mapped onto the serving scheduler, the page's request count for the ISL/OSL, its
    checkpoint format) with the entry's framework, or `forced`'s."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_serve import trtllm_doc

    doc = trtllm_doc(
        row["model"], row["tp"], isl, osl, None, row["hardware"], row.get("dtype", "fp8"), row.get("pp", 1)
    )
    # the page's llm_options (decode graphs padded to its batch sizes) where the row runs as
    # measured; another framework forced on it runs that framework's own defaults
    graphs = {} if forced not in (None, "trtllm") else doc["runtime"]
    doc["runtime"] = _runtime(entry, forced, **{k: v for k, v in graphs.items() if k != "framework"})
    return doc


def trtllm_serving(entry, forced, overrides, static=False):
    # The rows as benchmarks/bench_serve.py runs them (trtllm_row_doc); --static replaces the serving
    # section by one static batch.
    # a `per_gpu` table gives output tokens/s per GPU: the record's throughput per GPU
    per_gpu = bool(entry.get("per_gpu"))
    rate = "output_tokens_per_s_per_gpu" if per_gpu else "output_tokens_per_s"
    for name, row in entry["rows"].items():
        tp, pp = row["tp"], row.get("pp", 1)
        for key, measured in row["isl_osl"].items():
            isl, osl = (int(x) for x in key.split("/"))
            doc = trtllm_row_doc(entry, row, isl, osl, forced)
            if static:
                doc.pop("serving")
                doc["workload"] = {"batch": 1, "prompt_tokens": isl, "output_tokens": osl}
                got = _static_throughput(doc, overrides, isl, osl) / (tp * pp if per_gpu else 1)
                how = "static batch"
            else:
                got, how = roofline.serve(doc, overrides).record["throughput"][rate], "serve"
            label = f"TRT-LLM {name} TP{tp}{f' PP{pp}' if pp > 1 else ''} {key} ({how}{', per GPU' if per_gpu else ''})"
            yield "serving", label, got, measured, "tok/s/GPU" if per_gpu else "tok/s"


def fixed_concurrency(entry, forced, overrides, static=False):
    # A closed-loop client keeping `concurrency` requests in flight (serving.arrival.concurrency;
    # TensorRT-LLM: trtllm-bench's scheduler defaults, as bench_serve.py maps them; vLLM: its own
    # defaults, chunked prefill and KV blocks taken as needed, max_num_seqs 1024, the 8,192-token
    # budget). --static: one static batch of `concurrency`.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_serve import trtllm_doc

    n = entry["concurrency"]
    for key, measured in entry["isl_osl"].items():
        isl, osl = (int(x) for x in key.split("/"))
        doc = trtllm_doc(entry["model"], 1, isl, osl, entry["requests"], entry["hardware"], entry["dtype"])
        doc["runtime"] = _runtime(entry, forced)
        doc["serving"]["arrival"] = {"concurrency": n}
        if doc["runtime"]["framework"] == "vllm":  # vLLM's own scheduler: chunked prefill, blocks on demand
            doc["serving"]["scheduler"] = {
                "chunked_prefill": True,
                "admission": "on_demand",
                "max_num_seqs": 1024,
            }
        if static:
            doc.pop("serving")
            got, how = _batch_throughput(doc, overrides, n, isl, osl), "static batch"
        else:
            got, how = roofline.serve(doc, overrides).record["throughput"]["output_tokens_per_s"], "serve"
        yield "serving", f"{entry['label']} {n} in flight {key} ({how})", got, measured, "tok/s"


RUNNERS = {
    "vllm_prefill_a100": vllm_prefill,
    "hf_prefill_a100": vllm_prefill,
    "transformers_ci_gemma2b": decode_latency,
    "shadowkv_layer_breakdown": shadowkv_layers,
    "shadowkv_full_attention_decode": shadowkv_decode,
    "shadowkv_table3_llama31": shadowkv_decode,
    "shadowkv_table3_glm4": shadowkv_decode,
    "cp_paper_table6": cp_paper,
    "cp_paper_table7": cp_paper,
    "trtllm_max_throughput": trtllm_serving,
    "trtllm_per_gpu_throughput": trtllm_serving,
    "trtllm_gpt_oss_throughput": trtllm_serving,
    "concurrency_64_b200_trtllm": fixed_concurrency,
    "concurrency_64_b200_vllm": fixed_concurrency,
}


def collect(forced=None, overrides=(), static=False):
    devset = yaml.safe_load(DEVSET.read_text())
    rows = []
    for key, runner in RUNNERS.items():
        entry = devset[key]
        for category, label, got, measured, unit, *ran in runner(entry, forced, overrides, static):
            rows.append(
                {
                    "category": category,
                    "label": label,
                    "framework": ran[0] if ran else forced or entry["framework"],  # a row's own, if it says
                    "model": float(got),
                    "measured": float(measured),
                    "unit": unit,
                    "error": float(got) / float(measured) - 1.0,
                    "source": entry["source"],
                }
            )
    return rows


def summary(rows):
    out = {}
    for cat in sorted({r["category"] for r in rows}) + ["all"]:
        errs = np.abs([r["error"] for r in rows if cat == "all" or r["category"] == cat])
        out[cat] = (len(errs), float(np.median(errs)), float(np.percentile(errs, 90)))
    return out


def render(rows, forced=None) -> str:
    lines = [
        "# End-to-end error on the published development set",
        "",
        "Generated by `python benchmarks/published_report.py --write` from `benchmarks/published_devset.yaml`",
        "(every figure there cites its source). Error = model / measured - 1, each entry run with the",
        "framework that produced it (`runtime.framework`)"
        + (f"; this run forced `{forced}` on every entry." if forced else "."),
        "Calibration as users get it (`calibration: auto`): the shipped profile of the GPU and framework",
        "where one exists (vLLM on A100 and B200, TensorRT-LLM on H100, H200, B200, GB200 and RTX PRO 6000 Server); for `hf` and",
        "`transformers` the GPU's vLLM profile's torch kernels (cuBLAS GEMMs; FlashAttention-2 prefill on the A100); datasheet",
        "efficiencies elsewhere (`kernel`, A10G, H100-96GB).",
        f"Target (issue 11): median |error| <= {TARGET['median']:.0%}, p90 <= {TARGET['p90']:.0%}.",
        "",
        "| category | points | median abs error | p90 abs error |",
        "|---|---|---|---|",
    ]
    for cat, (n, med, p90) in summary(rows).items():
        lines.append(f"| {cat} | {n} | {med:.1%} | {p90:.1%} |")
    lines += ["", "| point | framework | model | measured | error |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['framework']} | {r['model']:.4g} {r['unit']} | "
            f"{r['measured']:.4g} {r['unit']} | {r['error']:+.1%} |"
        )
    sources = sorted({r["source"] for r in rows})
    lines += ["", "Sources:", ""] + [f"- {s}" for s in sources]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {OUT.relative_to(ROOT)}")
    parser.add_argument("--framework", help="force one runtime.framework on every entry")
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="PATH=VALUE")
    parser.add_argument("--static", action="store_true", help="serving rows from the static-batch estimate")
    args = parser.parse_args(argv)
    rows = collect(args.framework, tuple(args.sets), args.static)
    text = render(rows, args.framework)
    print(text)
    if args.write:
        from roofline.fileio import write_atomic

        write_atomic(OUT, text)
        print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
