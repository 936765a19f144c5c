"""`roofline serve` against published serving points, and its speed and saturation figures.

1. Offline max-throughput points of TensorRT-LLM (NVIDIA, "TensorRT-LLM Performance Overview",
   nvidia.github.io/TensorRT-LLM/performance/perf-overview.html: `trtllm-bench` throughput runs,
   all requests queued at t = 0, fixed input/output lengths per row; output tokens/s of the whole
   deployment; the page's later version, developer-guide/perf-overview.md, gives output tokens/s
   per GPU and adds 8K-32K prompts and outputs: the deployment's throughput over its GPUs is
   compared there). Our run of each row: `serving.arrival.offline`, the row's ISL/OSL, and the
   scheduler trtllm-bench configures when the command sets none (the page's commands set none):
   max_batch_size and max_num_tokens from its heuristic for FP8 and NVFP4 checkpoints, its build
   defaults 2048 and 8192 for others (`trtllm_bench_limits`; -> max_num_seqs, max_batched_tokens),
   chunked prefill off (-> chunked_prefill: false), kv_cache_free_gpu_mem_fraction 0.9 (->
   kv_memory_fraction), the GUARANTEED_NO_EVICT capacity scheduler (-> admission: reserve),
   tokens_per_block 32 (-> block_tokens); the page's llm_options.yml, whose cuda_graph_config pads
   decode batches to its listed sizes (`trtllm_graph_sizes` -> runtime.cuda_graph_batch_sizes);
   and the number of requests the page states for each
   ISL/OSL ("$num_requests": 30,000 at 128/128 down to 1,000 at 20000/2000, so that short requests
   reach a steady state; NUM_REQUESTS below). Assumed, not stated in the table: the FP8 and FP4
   checkpoints keep an FP8 KV cache (dtype.kv fp8), so attention computes in FP8 (dtype.attention
   auto: TensorRT-LLM's context FMHA over an FP8 cache, kernel_scales.FP8_CACHE_ATTENTION); an FP4 column
   runs NVFP4 weights and activations (dtype fp4); GPT-OSS's MXFP4 experts run as TensorRT-LLM's
   GPT-OSS deployment guide states (FORMATS: mxfp4, mxfp4-w4a16).
   The page's DEP columns (attention data parallelism x expert parallelism) run as `dep` attention
   ranks sharing the experts, printed apart and not counted (published_devset.yaml's
   trtllm_dep_throughput says why). Nothing here is fitted to these points. The simulator prices
   each step as the engine does with
   `runtime.framework: trtllm` (its measured kernels, PyTorch backend, overlap scheduler).
2. Speed: 10,000 requests of 8K prompt / 512 output tokens, offline, Llama 3.1 8B on one H100, one
   core (the issue's target: < 1 s; Vidur needs minutes).
3. Saturation: offered rates at 0.5x .. 4x the offline capacity; past it the served rate is flat and
   the queue shows in TTFT.
4-5. Attention data parallelism and routing: `bench_replicas.py` (its docstring), printed here.

Prints figures; asserts nothing (tests/test_serving.py holds the checks).

    python benchmarks/bench_serve.py [--requests N] [--skip-published] [--write]

(--requests N runs every row with N requests instead of the page's count.)
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target states
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from bench_replicas import lockstep, routing  # noqa: E402

import roofline  # noqa: E402
from roofline.hwspecs import load_hardware  # noqa: E402
from roofline.models import load_model  # noqa: E402
from roofline.simulator.frameworks import framework  # noqa: E402

# Output tokens/s (TensorRT-LLM performance overview, see the module docstring), keyed "ISL/OSL":
# the development set's rows (benchmarks/published_devset.yaml, transcribed once with their source).
_DEVSET = yaml.safe_load((Path(__file__).resolve().parent / "published_devset.yaml").read_text())
# The dev set's TensorRT-LLM tables, with their titles here: the page's first version (output tok/s of
# the deployment), its later version (output tok/s per GPU, long contexts) and that version's GPT-OSS
# tables (TP1 columns; the formats: FORMATS' mxfp4 and mxfp4-w4a16); a `per_gpu` entry compares the
# record's throughput per GPU
TRTLLM_TABLES = (
    ("trtllm_max_throughput", "TensorRT-LLM offline max-throughput points (output tok/s)"),
    (
        "trtllm_per_gpu_throughput",
        "The page's later version (output tok/s per GPU; 8K-32K prompts, 8K-32K outputs)",
    ),
    ("trtllm_gpt_oss_throughput", "The page's GPT-OSS tables (output tok/s per GPU, TP1)"),
)
# Rows transcribed to measure a gap the model has, printed apart and not counted (their YAML says why)
TRTLLM_GAP_TABLES = (
    (
        "trtllm_dep_throughput",
        "The page's DEP columns (attention data parallelism x expert parallelism; output tok/s per GPU): "
        "not counted, a gap whose cause is not found (the ranks' lockstep, modelled, leaves these symmetric offline runs as they were)",
    ),
)
# Requests per run by ISL/OSL: the page's "$num_requests" table (section "Preparing a Dataset")
NUM_REQUESTS = {
    "128/128": 30000,
    "128/2048": 3000,
    "128/4096": 1500,
    "1000/2000": 1500,
    "2048/128": 3000,
    "2048/2048": 1500,
    "5000/500": 1500,
    "1000/1000": 3000,
    "500/2000": 3000,
    "20000/2000": 1000,
    # the page's later version (developer-guide/perf-overview.md; the dev set's
    # trtllm_per_gpu_throughput): its own "$num_requests" table
    "1024/1024": 3000,
    "8192/1024": 1500,
    "1024/8192": 1500,
    "32768/1024": 1000,
    "1024/32768": 1000,
}
# A column's checkpoint format -> the scenario's dtypes (an FP8 KV cache but on Hopper's GPT-OSS)
FORMATS = {
    "fp8": {"weights": "fp8", "activations": "fp8", "kv": "fp8"},
    "fp4": {"weights": "fp4", "activations": "fp4", "kv": "fp8"},
    # GPT-OSS (published_devset.yaml's trtllm_gpt_oss_throughput): MXFP4 experts, bf16 attention
    # projections; Blackwell under MXFP8 activations with an FP8 cache, Hopper under bf16 with bf16
    "mxfp4": {"weights": "fp4", "activations": "fp8", "kv": "fp8", "attention_weights": "bf16"},
    "mxfp4-w4a16": {"weights": "fp4", "activations": "bf16", "kv": "bf16", "attention_weights": "bf16"},
}
TRTLLM_SCHEDULER = {
    "kv_memory_fraction": 0.9,
    "admission": "reserve",
    "block_tokens": 32,
    "chunked_prefill": False,
}
# trtllm-bench's own defaults where its heuristic does not apply (BuildConfig: max_batch_size 2048,
# max_num_tokens 8192), and the bytes per weight and KV element its heuristic reads per quantization
# (tensorrt_llm/bench/build/tuning.py BYTES_PER_ELEM; any other format: 2)
TRTLLM_DEFAULT_LIMITS = (2048, 8192)
# The page's llm_options.yml for every model: cuda_graph_config, enable_padding: true, these batch sizes
PAGE_GRAPH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096, 8192)


def trtllm_graph_sizes(max_batch_size: int, max_num_tokens: int) -> list:
    """The decode graphs TensorRT-LLM captures from the page's list (PyTorch model engine,
    _filter_cuda_graph_batch_sizes): the sizes up to min(max_batch_size, max_num_tokens), and, since
    padding is on and a listed size exceeds that, that bound itself."""
    top = min(max_batch_size, max_num_tokens)
    kept = [b for b in PAGE_GRAPH_SIZES if b <= top]
    return kept + [top] if top > kept[-1] and max(PAGE_GRAPH_SIZES) > top else kept


TRTLLM_TUNED_BYTES = {"fp8": 1.0, "fp4": 0.5}


def trtllm_bench_limits(
    model: str, tp: int, pp: int, isl: int, osl: int, hardware: str, fmt: str, mem_fraction: float = 0.9
) -> tuple:
    """(max_batch_size, max_num_tokens) as `trtllm-bench throughput` sets them for the PyTorch backend
    when the command gives neither (the perf-overview page's commands give neither): its heuristic
    (tensorrt_llm/bench/build/tuning.py, calc_engine_setting and finetune_setting, via
    bench/benchmark/utils/general.py get_settings) for FP8 and NVFP4 checkpoints, the build defaults
    for others (GPT-OSS's MXFP4); chunked prefill off, so max_num_tokens is raised to the longest
    prompt + max_batch_size. The heuristic: requests the KV cache holds at ISL + OSL each, from the
    GPU's total memory less the checkpoint (its safetensors element count x bytes per element: NVFP4
    stores two weights per element and an FP8 scale per 16) times kv_cache_free_gpu_mem_fraction
    (0.9, the command's default), KV heads at least tp; the batch capped at 4096 / pp and rounded up
    (to 32s below 256, 128s below 1024, else 256s; at least 64), the tokens at batch x (1 + ISL / OSL)
    capped at 32768 and rounded up (256s below 4096, at least 2048; 512s below 8192; else 1024s)."""
    byte = TRTLLM_TUNED_BYTES.get(fmt)
    if byte is None:
        bs, tokens = TRTLLM_DEFAULT_LIMITS
        return bs, max(tokens, isl + bs)
    m = load_model(model)
    kv_elems = 0.0
    for g in m.layer_groups:
        heads = getattr(g.mixer, "num_kv_heads", 0)
        if heads:
            # config.json's KV heads x head dim; a config without head_dim (DeepSeek's MLA) gives
            # hidden / heads, as the heuristic's ModelConfig reads it (not the latent it caches)
            dim = getattr(g.mixer, "head_dim", m.hidden_size // g.mixer.num_heads)
            kv_elems += g.count * 2 * max(tp, heads) * dim
    gib = 1024.0**3
    per_token = kv_elems * 1.0 / gib  # the FP8 and NVFP4 checkpoints keep an FP8 cache (1 byte)
    stored = float(m.total_params())
    if fmt == "fp4":  # quantized linear weights: packed pairs plus one scale per 16 weights
        linear = float(m.layer_params())
        stored = stored - linear + linear * (0.5 + 1.0 / 16.0)
    engine = stored * byte / gib
    memory = load_hardware(hardware).memory_bytes / gib * tp * pp
    requests = (memory - engine) * mem_fraction / (per_token * (isl + osl))
    raw_bs = min(requests, 4096) / pp
    bs = _rounded_up(raw_bs, ((256, 32), (1024, 128), (math.inf, 256)), 64)
    raw_tokens = min(raw_bs * (1 + isl / osl), 32768)
    tokens = _rounded_up(raw_tokens, ((4096, 256), (8192, 512), (math.inf, 1024)), 2048)
    return bs, max(tokens, isl + bs)


def _rounded_up(x: float, ladder: tuple, least: int) -> int:
    """`x` rounded up to a multiple of the step of the first (bound, step) it is below, at least
    `least` (finetune_setting's rounding)."""
    step = next(step for bound, step in ladder if x < bound)
    return max(least, step * math.ceil(x / step))


def trtllm_doc(
    model: str,
    tp: int,
    isl: int,
    osl: int,
    requests: int | None = None,
    hardware: str = "h200",
    fmt: str = "fp8",
    pp: int = 1,
    dep: int = 1,
) -> dict:
    """One row's scenario; `requests` None: the page's count for its ISL/OSL (NUM_REQUESTS). `dep`:
    a DEP column's GPUs (the page's `--tp dep --ep dep` with enable_attention_dp: each GPU attends
    its own requests, the experts split over all; `tp` then 1): the heuristic sees tp = dep and its
    limits hold per attention rank."""
    bs, tokens = trtllm_bench_limits(model, max(tp, dep), pp, isl, osl, hardware, fmt)
    return {
        "name": f"trtllm-{model}-{isl}-{osl}",
        "model": model,
        "hardware": hardware,
        "parallelism": {"tp": tp, "pp": pp} if dep == 1 else {"tp": 1, "pp": pp, "dp": dep, "ep": dep},
        "dtype": dict(FORMATS[fmt]),
        # its kernels, PyTorch backend and overlap scheduler; decode graphs padded to the page's sizes
        "runtime": {"framework": "trtllm", "cuda_graph_batch_sizes": trtllm_graph_sizes(bs, tokens)},
        "serving": {
            "requests": NUM_REQUESTS[f"{isl}/{osl}"] if requests is None else requests,
            "arrival": {"offline": True},
            "prompt_tokens": isl,
            "output_tokens": osl,
            "scheduler": dict(TRTLLM_SCHEDULER, max_num_seqs=bs, max_batched_tokens=tokens),
        },
    }


def published(requests: int | None, tables=TRTLLM_TABLES) -> list:
    lines: list = []
    count = "the page's request count per ISL/OSL" if requests is None else f"{requests} requests per row"
    errors = []
    for key, title in tables:
        entry = _DEVSET[key]
        lines.append(f"{title}, {count}")
        errors += _published_rows(entry["rows"], bool(entry.get("per_gpu")), requests, lines)
    errs = np.abs(errors)
    lines.append(f"  median |error| {np.median(errs):.1%} (max {errs.max():.1%}) over {len(errs)} rows")
    lines.append(f"  signed median {np.median(errors):+.1%}")
    return lines


def _published_rows(rows: dict, per_gpu: bool, requests, lines: list) -> list:
    """Run one table's rows (throughput per GPU where `per_gpu`), appending their lines; the errors."""
    errors = []
    for name, row in rows.items():
        model, tp, hardware, table = row["model"], row["tp"], row["hardware"], row["isl_osl"]
        fmt, pp, dep = row.get("dtype", "fp8"), row.get("pp", 1), row.get("dep", 1)
        layout = f"TP{tp} PP{pp}" if dep == 1 else f"DEP{dep} PP{pp}"
        lines.append(f"  {name} {fmt.upper()}, {layout} on {max(tp, dep) * pp} x {hardware}")
        lines.append(
            f"    {'ISL/OSL':>11} {'published':>10} {'predicted':>10} {'error':>8} {'batch':>6} {'wall':>6}"
        )
        for key, want in table.items():
            isl, osl = (int(x) for x in key.split("/"))
            t0 = time.perf_counter()
            res = roofline.serve(trtllm_doc(model, tp, isl, osl, requests, hardware, fmt, pp, dep))
            wall = time.perf_counter() - t0
            got = res.record["throughput"][
                "output_tokens_per_s_per_gpu" if per_gpu else "output_tokens_per_s"
            ]
            series = res.timelines[0].series
            batch = float(np.sum(series["running"] * series["dt_s"]) / np.sum(series["dt_s"]))
            err = got / want - 1.0
            errors.append(err)
            lines.append(f"    {key:>11} {want:>10,} {got:>10,.0f} {err:>+8.1%} {batch:>6.0f} {wall:>5.1f}s")
    return errors


def speed() -> list:
    lines: list = []
    doc = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "serving": {
            "requests": 10_000,
            "arrival": {"offline": True},
            "prompt_tokens": 8192,
            "output_tokens": 512,
        },
    }
    roofline.serve({**doc, "serving": {**doc["serving"], "requests": 50}})  # warm imports
    best, best_cpu = np.inf, np.inf
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        res = roofline.serve(doc)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    rec = res.record
    lines.append(
        f"speed: 10,000 requests of 8K/512 (Llama 3.1 8B, 1 x H100, offline): {best:.2f} s wall, "
        f"{best_cpu:.2f} s CPU (best of 3, one thread; CPU time is the figure on a shared machine), "
        f"{rec['steps']:,} steps, {rec['preemptions']:,} preemptions, "
        f"{rec['throughput']['output_tokens_per_s']:,.0f} output tok/s"
    )
    return lines


def saturation() -> list:
    lines: list = []
    serving = {
        "requests": 2000,
        "prompt_tokens": {"dist": "lognormal", "mean": 2048, "sigma": 0.8, "max": 32768},
        "output_tokens": {"dist": "lognormal", "mean": 256, "sigma": 0.6, "max": 2048},
    }
    doc = {"model": "llama-3.1-8b", "hardware": "h100-sxm"}
    # the capacity of the deployment the online runs have: `vllm serve`'s limits (an offline run
    # alone would take the LLM class's larger token budget)
    hw = load_hardware(doc["hardware"])
    seqs, tokens, chunked, _ = framework("vllm").scheduler_defaults(hw.memory_bytes, hw.name, offline=False)
    serving["scheduler"] = {"max_num_seqs": seqs, "max_batched_tokens": tokens, "chunked_prefill": chunked}
    cap = roofline.serve({**doc, "serving": {**serving, "arrival": {"offline": True}}}).record
    rate = cap["throughput"]["requests_per_s"]
    lines.append(f"saturation (Llama 3.1 8B, 1 x H100, lognormal 2K/256): offline capacity {rate:.2f} req/s")
    lines.append(f"  {'offered':>8} {'served':>8} {'TTFT p50':>9} {'TTFT p99':>9} {'queue mean':>10}")
    for f in (0.5, 0.8, 1.0, 1.5, 2.0, 4.0):
        rec = roofline.serve({**doc, "serving": {**serving, "arrival": {"rate_per_s": f * rate}}}).record
        lines.append(
            f"  {f:>7.1f}x {rec['throughput']['requests_per_s']:>8.2f} {rec['ttft_s']['p50']:>8.3f}s "
            f"{rec['ttft_s']['p99']:>8.3f}s {rec['queue_s']['mean']:>9.3f}s"
        )
    return lines


OUT = Path(__file__).resolve().parent.parent / "docs" / "validation" / "serving.md"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--requests",
        type=int,
        default=None,
        help="requests per published row (default: the page's per ISL/OSL)",
    )
    p.add_argument("--skip-published", action="store_true")
    p.add_argument("--write", action="store_true", help="regenerate docs/validation/serving.md")
    args = p.parse_args()
    sections = [
        ("Speed", speed()),
        ("Saturation", saturation()),
        ("Attention data parallelism", lockstep()),
        ("Routing", routing()),
    ]
    if not args.skip_published:
        sections.insert(0, ("TensorRT-LLM offline max-throughput points", published(args.requests)))
        gap = published(args.requests, TRTLLM_GAP_TABLES)
        sections.insert(1, ("Not counted: TensorRT-LLM's DEP columns", gap))
    for _, lines in sections:
        print("\n".join(lines))
    if args.write:
        from roofline.fileio import write_atomic

        head = [
            "# `roofline serve` against published serving points",
            "",
            f"Generated by `python benchmarks/bench_serve.py --write` on {time.strftime('%Y-%m-%d')}; what each",
            "section runs and assumes is in the script's docstring. Nothing is fitted to these points;",
            "signed error = predicted / published - 1. Speed is CPU time on one thread of this machine.",
        ]
        body = [line for title, lines in sections for line in ("", f"## {title}", "", "```", *lines, "```")]
        write_atomic(OUT, "\n".join(head + body) + "\n")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
