"""The method-kernel part of `roofline validate`: time one layer's attention kernel per method and
compare it with the simulator's per-layer time of the attention ops that kernel replaces.

Cases (CUDA and an importable `roofline.kernels` needed; skipped with the reason otherwise), each
at every --contexts prompt length (decode: every --batches batch; prefill: batch 1):
- dense decode (`decode_attention`, bf16 KV) vs the `attention` op;
- int8 / int4 KV decode (`quant_decode_attention`, group gcd(head_dim, 128), fp16 scale and zero)
  vs `attention` + `kv_dequant` under `kv_quant` (no residual window);
- page-sparse decode (`sparse_decode_attention`: Quest scoring, top-k and the page kernel; page
  metadata prebuilt) at several token budgets vs `attention` + `quest_page_select` under `quest`
  (dense_layers 0, so every layer is sparse);
- block-sparse prefill (`block_sparse_prefill`, a random block mask, index prebuilt) at several
  densities vs the prefill `attention` op under `block_sparse_prefill` at the mask's real causal
  density (the random mask always keeps the diagonal blocks).
The simulator's op times are summed over layers (`op_table`); a layer's share is that sum divided by
the layer count. Kernels are timed with `profilers.timing.CudaTimer` (do_bench: L2 flushed, median).
Each point fails on its own (a missing module or a changed signature skips that point only).
"""

from __future__ import annotations

import math

import torch

from roofline.profilers import validate_report as rep

PAGE_SIZE = 16
QUEST_BUDGETS = (512, 2048, 8192)
DENSITIES = (0.1, 0.3, 0.6)
PREFILL_BLOCK = 64


def simulated_layer_time(
    settings, arch, methods: list, phase: str, names: tuple, prompt: int, batch: int
) -> float:
    """The simulator's mean per-layer time of ops `names` in `phase` under `methods` at one point."""
    from roofline.api import op_table, simulate

    doc = {
        "model": settings.model,
        "hardware": settings.hardware,
        "calibration": settings.calibration,
        "methods": methods,
        "workload": {"batch": batch, "prompt_tokens": prompt, "output_tokens": 2},
    }
    rows = op_table(simulate(doc), 0, phase)
    return sum(r["time_s"] for r in rows if r["name"] in names) / arch.num_layers


def _decode_inputs(spec, batch: int, kv_len: int, dev, dt):
    q = torch.randn(batch, spec.num_heads, spec.head_dim, device=dev, dtype=dt)
    k = torch.randn(batch, spec.num_kv_heads, kv_len, spec.head_dim, device=dev, dtype=dt)
    lens = torch.full((batch,), kv_len, device=dev, dtype=torch.int32)
    return q, k, torch.randn_like(k), lens


def _dense_decode(spec, batch, kv_len, dev, dt):
    from roofline.kernels.decode_attention import decode_attention

    q, k, v, lens = _decode_inputs(spec, batch, kv_len, dev, dt)
    return lambda: decode_attention(q, k, v, lens, check_values=False), [], {}


def _quant_decode(spec, batch, kv_len, dev, dt, bits):
    from roofline.kernels.quant_decode_attention import quant_decode_attention, quantize_kv

    group = math.gcd(spec.head_dim, 128)  # the simulator's default group where head_dim allows
    q, k, v, lens = _decode_inputs(spec, batch, kv_len, dev, dt)
    # fp16 scale and zero point: the 4 bytes per group the simulator's kv_quant counts
    kq, vq = (quantize_kv(x, bits, group, scale_dtype=torch.float16) for x in (k, v))
    del k, v
    methods = [{"name": "kv_quant", "bits": bits, "group_size": group, "residual_tokens": 0}]
    return (
        lambda: quant_decode_attention(q, kq, vq, lens, bits=bits, check_values=False),
        methods,
        {"group_size": group},
    )


def _sparse_decode(spec, batch, kv_len, dev, dt, budget):
    from roofline.kernels.sparse_decode_attention import page_metadata, sparse_decode_attention

    q, k, v, lens = _decode_inputs(spec, batch, kv_len, dev, dt)
    meta = page_metadata(k, PAGE_SIZE, lens)  # kept up to date by a serving system, not per step
    methods = [{"name": "quest", "page_size": PAGE_SIZE, "token_budget": budget, "dense_layers": 0}]
    return (
        lambda: sparse_decode_attention(q, k, v, lens, PAGE_SIZE, budget, metadata=meta, check_values=False),
        methods,
        {},
    )


def _block_sparse_prefill(spec, batch, seq, dev, dt, density):
    from roofline.kernels.block_sparse_prefill import (
        active_blocks,
        block_sparse_prefill,
        causal_pairs,
        random_block_mask,
    )

    q = torch.randn(batch, spec.num_heads, seq, spec.head_dim, device=dev, dtype=dt)
    k = torch.randn(batch, spec.num_kv_heads, seq, spec.head_dim, device=dev, dtype=dt)
    v = torch.randn_like(k)
    gen = torch.Generator(device=dev).manual_seed(seq)
    mask = random_block_mask(batch, spec.num_heads, seq, PREFILL_BLOCK, density, device=dev, generator=gen)
    blocks = active_blocks(mask)  # a method builds its index once per layer, outside the kernel
    # The random mask always keeps the diagonal: simulate the density it really has.
    real = causal_pairs(mask, PREFILL_BLOCK, seq) / (batch * spec.num_heads * seq * (seq + 1) / 2)
    methods = [{"name": "block_sparse_prefill", "density": real, "block_size": PREFILL_BLOCK}]
    return (
        lambda: block_sparse_prefill(q, k, v, mask, PREFILL_BLOCK, blocks=blocks),
        methods,
        {"causal_density": round(real, 4)},
    )


def _cases(budgets=QUEST_BUDGETS, densities=DENSITIES) -> list:
    """(method, kernel config, phase, simulated op names, builder, builder kwargs)."""
    cases = [("dense", {}, "decode", ("attention",), _dense_decode, {})]
    cases += [
        ("kv_quant", {"bits": bits}, "decode", ("attention", "kv_dequant"), _quant_decode, {"bits": bits})
        for bits in (8, 4)
    ]
    cases += [
        ("quest", {"page_size": PAGE_SIZE, "token_budget": b}, "decode", ("attention", "quest_page_select"),
         _sparse_decode, {"budget": b})
        for b in budgets
    ]  # fmt: skip
    cases += [
        ("block_sparse_prefill", {"density": d, "block_size": PREFILL_BLOCK}, "prefill", ("attention",),
         _block_sparse_prefill, {"density": d})
        for d in densities
    ]  # fmt: skip
    return cases


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200]


def validate_kernels(settings, arch, device: torch.device) -> dict:
    """{'points': [...], 'summary': {...}} or {'skipped': reason}."""
    if device.type != "cuda":
        return {"skipped": "the method kernels are Triton GPU kernels; this run is on CPU"}
    try:
        import roofline.kernels.decode_attention  # noqa: F401  (availability check)
        from roofline.profilers.timing import CudaTimer
    except ImportError as exc:
        return {"skipped": f"roofline.kernels or profilers.timing not importable ({_short(exc)})"}
    if any(g.mixer.window for g in arch.layer_groups):
        return {
            "skipped": f"{arch.name} has sliding-window layers: the per-layer attention time is not one kernel"
        }
    timer = CudaTimer()
    return {"timer": timer.name, **kernel_points(settings, arch, device, torch.bfloat16, timer)}


def kernel_points(settings, arch, device, dtype, timer, budgets=QUEST_BUDGETS, densities=DENSITIES) -> dict:
    """Every case at every context (decode: every batch; prefill: batch 1) on `device` in `dtype`,
    timed by `timer(fn, work)`: {'points', 'summary'}. (On CPU only under TRITON_INTERPRET=1.)"""
    spec = arch.layer_groups[0].mixer
    dtype_name = str(dtype).removeprefix("torch.")
    points = []
    for method, config, phase, names, build, kwargs in _cases(budgets, densities):
        for prompt in settings.contexts:
            if method == "quest" and config["token_budget"] >= prompt:
                continue  # the budget covers the whole cache: nothing sparse to time
            for batch in settings.batches if phase == "decode" else [1]:
                cfg = {**config, "prompt_tokens": prompt, "batch": batch, "phase": phase, "dtype": dtype_name}
                where = (spec, device, dtype, timer)
                points.append(_kernel_point(settings, arch, where, method, cfg, names, build, kwargs))
    return {"points": points, "summary": rep.summarize(points, key="method", groups=None)}


def _kernel_point(settings, arch, where, method, cfg, names, build, kwargs) -> dict:
    """Time one kernel configuration and predict it; a failure becomes {'skipped': reason}."""
    from roofline.profilers.timing import Work

    spec, device, dtype, timer = where
    prompt, batch, phase = cfg["prompt_tokens"], cfg["batch"], cfg["phase"]
    kv_len = prompt + 1 if phase == "decode" else prompt  # the decode step attends P + 1 tokens
    try:
        fn, methods, extra = build(spec, batch, kv_len, device, dtype, **kwargs)
        cfg.update(extra)
        measured = timer(fn, Work(f"attention_{phase}", x=float(kv_len)))
        predicted = simulated_layer_time(settings, arch, methods, phase, names, prompt, batch)
    except (ImportError, AttributeError, TypeError, ValueError, RuntimeError) as exc:
        return {"method": method, "config": cfg, "skipped": _short(exc)}
    finally:
        fn = None
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
    return {
        "method": method,
        "config": cfg,
        "measured_s": measured,
        "predicted_s": predicted,
        "error": rep.relative_error(measured, predicted),
        "simulated_ops": list(names),
    }
