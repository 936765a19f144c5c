"""How replicas share work in `roofline serve`: printed figures (bench_serve.py writes them into
docs/validation/serving.md).

4. Attention data parallelism: MoE models whose experts are split over data-parallel ranks (ep = dp),
   Poisson traffic of mixed lengths, the ranks stepped in lockstep (as `serve` runs them) against the
   same ranks' schedulers stepped apart (what `serve` did before): what one rank's prompts cost the
   others' decodes.
5. Routing: Llama 3.1 8B on 4 x H100 (dp 4), a trace of 2,000 requests at 25/s sharing 6,000-token
   prefixes of 24 or 150 kinds (system prompts; 150 do not fit one replica's cache): round_robin,
   least_loaded and prefix_aware (`serving.routing`).

    python benchmarks/bench_replicas.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import roofline
from roofline.hwspecs import load_hardware

LOCKSTEP_CASES = (  # (model, hardware, ranks, dtype, offered requests/s)
    ("qwen3-30b-a3b", "h100-sxm", 2, "bf16", (4.0, 8.0)),
    ("deepseek-v3", "h200", 8, "fp8", (4.0, 8.0)),
)


def lockstep() -> list:
    from roofline.api import load_scenario, simulate, step_model
    from roofline.serving_api import _requests
    from roofline.serving_pools import build_pool
    from roofline.simulator.serving.config import ServingConfig
    from roofline.simulator.serving.results import request_view, summarise
    from roofline.simulator.serving.scheduler import simulate as apart
    from roofline.simulator.serving.scheduler import simulate_group
    from roofline.simulator.serving.workload import split

    lines = [
        "lockstep: ranks sharing their experts (tp 1, dp = ep) under Poisson traffic (prompts lognormal",
        "mean 2,048, outputs lognormal mean 256; 1,000 requests), stepped together vs apart",
        f"  {'model':<14} {'GPUs':>10} {'req/s':>6} {'':>9} {'TPOT p50':>9} {'TPOT p90':>9} {'TTFT p90':>9} {'out tok/s':>10}",
    ]
    for model, hardware, ranks, dtype, rates in LOCKSTEP_CASES:
        for rate in rates:
            doc = {
                "model": model,
                "hardware": hardware,
                "dtype": {"weights": dtype, "activations": dtype},
                "parallelism": {"tp": 1, "dp": ranks, "ep": ranks},
                "serving": {
                    "requests": 1000,
                    "arrival": {"rate_per_s": rate},
                    "prompt_tokens": {"dist": "lognormal", "mean": 2048, "sigma": 0.8, "max": 16384},
                    "output_tokens": {"dist": "lognormal", "mean": 256, "sigma": 0.6, "max": 2048},
                },
            }
            sc = load_scenario(doc, (), None, require_workload=False)
            cfg = ServingConfig.from_values(sc.serving)
            pool = build_pool(sc, cfg, load_hardware(hardware), simulate, step_model)
            parts = [q for _, q in split(_requests(cfg, None), ranks) if q.n]
            runs = {
                "together": simulate_group(parts, pool.engine, pool.power),
                "apart": [apart(q, pool.engine, pool.power) for q in parts],
            }
            for how, tls in runs.items():
                rec = summarise(
                    request_view(parts, tls),
                    tls,
                    replica_gpus=[1] * len(tls),
                    replica_blocks=[pool.blocks] * len(tls),
                    gpus=ranks,
                    usd_per_gpu_hour=1.0,
                    tdp_w=700.0,
                    slo_ttft=None,
                    slo_tpot=None,
                )
                lines.append(
                    f"  {model:<14} {f'{ranks} x {hardware}':>10} {rate:>6.1f} {how:>9} "
                    f"{rec['tpot_s']['p50'] * 1e3:>7.1f}ms {rec['tpot_s']['p90'] * 1e3:>7.1f}ms "
                    f"{rec['ttft_s']['p90']:>8.2f}s {rec['throughput']['output_tokens_per_s']:>10,.0f}"
                )
    return lines


def routing() -> list:
    import json
    import tempfile

    lines = [
        "routing: Llama 3.1 8B, 4 x H100 (dp 4), 2,000 requests at 25/s (Poisson), each a 6,000-token shared",
        "prefix of one of K kinds + 50-2,000 own tokens, 20-300 output tokens",
        f"  {'K':>4} {'routing':>13} {'prefix hits':>11} {'TTFT p50':>9} {'TTFT p99':>9} {'E2E p90':>8}",
    ]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for kinds in (24, 150):
            t = np.cumsum(rng.exponential(1 / 25.0, 2000))
            rows = [
                {
                    "arrival_s": float(a),
                    "prompt_tokens": int(6000 + rng.integers(50, 2000)),
                    "output_tokens": int(rng.integers(20, 300)),
                    "prefix_id": f"system-{int(rng.integers(0, kinds))}",
                    "prefix_tokens": 6000,
                }
                for a in t
            ]
            path = Path(tmp) / f"prefixes-{kinds}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            for how in ("round_robin", "least_loaded", "prefix_aware"):
                doc = {
                    "model": "llama-3.1-8b",
                    "hardware": "h100-sxm",
                    "parallelism": {"dp": 4},
                    "serving": {"requests": 2000, "arrival": {"trace": str(path)}, "routing": how},
                }
                rec = roofline.serve(doc).record
                lines.append(
                    f"  {kinds:>4} {how:>13} {rec['prefix_hit_rate']:>10.1%} {rec['ttft_s']['p50']:>8.3f}s "
                    f"{rec['ttft_s']['p99']:>8.3f}s {rec['e2e_s']['p90']:>7.2f}s"
                )
    return lines


if __name__ == "__main__":
    print("\n".join(lockstep() + routing()))
