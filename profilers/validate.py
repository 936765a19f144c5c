"""`roofline validate`: time a real torch decoder and compare with the simulator's predictions.

For each prompt length P and batch b it measures
- TTFT: prefill of b random prompts of P tokens into a static KV cache, then the last position's
  final norm, LM head and greedy sampling (what the simulator's `ttft_s` covers);
- TPOT: one decode step at KV length P + 1 (embedding, all layers, head, sampling), captured in
  a CUDA graph on GPUs (eager for MoE models: their routing is data-dependent) and eager on CPU.
  The simulator is asked for output_tokens = 2, whose single decode step is at that KV length.

Times are medians after warm-up: CUDA events on GPUs, the host clock on CPU (where torch runs
synchronously). With fewer layers built than the model has (`--layers`, or what fits in GPU
memory), the non-layer part (embedding + head + sampling, timed on its own) is kept and the rest
is scaled: full = outside + (measured - outside) * full_layers / built_layers.

The simulator runs the same points (bf16 everywhere; the CPU run measures fp32 and only exercises
the pipeline — a CPU has no hwspecs SKU, so its numbers say nothing about the model's accuracy).
Reports are built and written by `validate_report`; method kernels by `validate_kernels`.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from roofline.profilers import validate_report as rep
from roofline.profilers.torch_model import Decoder, check_supported, layer_bytes, outside_bytes

CPU_LAYERS = 2
MEMORY_HEADROOM = 0.85  # share of free GPU memory the run may plan to use
# Median of at least MIN_ITERS samples, more while under BUDGET_S per measurement (GPU only).
WARMUP, MIN_ITERS, MAX_ITERS, BUDGET_S = 2, 3, 50, 1.0


# torch.cuda.get_device_name() substrings -> hwspecs SKU; first match wins (most specific first).
def sku_for_device(name: str) -> str | None:
    """The hwspecs SKU of a CUDA device name, e.g. 'NVIDIA H100 80GB HBM3' -> 'h100-sxm' (one table,
    in profilers.device)."""
    from roofline.profilers.device import hardware_slug

    return hardware_slug(name)


@dataclass
class Settings:
    model: str
    hardware: str
    contexts: list
    batches: list
    device: str = "cpu"
    layers: int | None = None
    calibration: str = "auto"
    kernels: bool = True
    notes: list = field(default_factory=list)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {os.cpu_count()} logical cores)"


def default_layers(arch, device: torch.device, contexts: list, batches: list, dtype_bytes: int) -> int:
    """All layers if weights + the largest KV cache + prefill activations fit in free GPU memory,
    else as many as do (at least 1); CPU_LAYERS on CPU."""
    if device.type != "cuda":
        return min(CPU_LAYERS, arch.num_layers)
    free, _ = torch.cuda.mem_get_info(device)
    spec = arch.layer_groups[0].mixer
    tokens = max(contexts) * max(batches)
    kv_per_layer = 2 * (tokens + max(batches)) * spec.num_kv_heads * spec.head_dim * dtype_bytes
    # prefill activations: a few hidden-sized tensors, the fused FFN up output and the logits
    widest = max(getattr(g.ffn, "intermediate", 0) or g.ffn.expert_intermediate for g in arch.layer_groups)
    activations = (
        tokens * (6 * arch.hidden_size + 3 * widest) * dtype_bytes + max(batches) * arch.vocab_size * 4
    )
    room = MEMORY_HEADROOM * free - outside_bytes(arch, dtype_bytes) - activations
    per_layer = layer_bytes(arch, dtype_bytes) + kv_per_layer
    return int(max(1, min(arch.num_layers, room // per_layer)))


def _sample(fn, device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3
    t0 = time.perf_counter()  # host clock: CPU torch ops run synchronously, no device queue
    fn()
    return time.perf_counter() - t0  # host clock: see above


def median_time(fn, device: torch.device) -> float:
    """Median seconds of fn() after WARMUP calls: MIN_ITERS samples, more (up to MAX_ITERS) while
    the samples so far take less than BUDGET_S on a GPU."""
    for _ in range(WARMUP):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    samples = [_sample(fn, device) for _ in range(MIN_ITERS)]
    if device.type == "cuda":
        while len(samples) < MAX_ITERS and sum(samples) < BUDGET_S:
            samples.append(_sample(fn, device))
    return float(np.median(samples))


def _graphed(fn, device: torch.device):
    """fn captured in a CUDA graph (after side-stream warm-up, as torch.cuda.graphs requires)."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def measure_point(model: Decoder, prompt: int, batch: int, graphs: bool) -> dict:
    """Median times of prefill (TTFT), one decode step at KV length prompt + 1 (TPOT) and their
    non-layer parts, all for the built layers only. The KV cache lives for this point only."""
    device, vocab = model.device, model.arch.vocab_size
    gen = torch.Generator(device="cpu").manual_seed(prompt * 1_000 + batch)
    tokens = torch.randint(0, vocab, (batch, prompt), generator=gen).to(device)
    step = torch.randint(0, vocab, (batch, 1), generator=gen).to(device)
    try:
        return _measure(model, tokens, step, model.new_cache(batch, prompt + 1), graphs)
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the cache and graph pools of this point are garbage now


def _measure(model: Decoder, tokens, step, cache, graphs: bool) -> dict:
    device, prompt = model.device, tokens.shape[1]

    def decode():
        return model.decode(step, prompt, cache)

    def decode_outside():
        return model.outside_layers(step)

    out = {
        "prefill_s": median_time(lambda: model.prefill(tokens, cache), device),
        "prefill_outside_s": median_time(lambda: model.outside_layers(tokens), device),
    }
    out["decode_mode"] = "cuda_graph" if graphs else "eager"
    if graphs:
        try:
            decode, decode_outside = _graphed(decode, device), _graphed(decode_outside, device)
        except RuntimeError as exc:  # a capture failure: measure eagerly rather than lose the point
            torch.cuda.synchronize(device)
            out["decode_mode"] = f"eager (CUDA graph capture failed: {str(exc).splitlines()[0][:120]})"
    out["decode_s"] = median_time(decode, device)
    out["decode_outside_s"] = median_time(decode_outside, device)
    return out


def scaled(total: float, outside: float, built: int, full: int) -> float:
    """Full-model time from a partial build: the non-layer part, plus the layers' part x full/built."""
    return outside + (total - outside) * full / built


def predictions(settings: Settings) -> dict:
    """(prompt, batch) -> simulator record at output_tokens = 2 (one decode step at KV = P + 1)."""
    from roofline.api import simulate

    doc = {
        "model": settings.model,
        "hardware": settings.hardware,
        "calibration": settings.calibration,
        "dtype": {"weights": "bf16", "activations": "bf16", "kv": "bf16"},
        "workload": {"batch": settings.batches[0], "prompt_tokens": settings.contexts[0], "output_tokens": 2},
        "sweep": {
            "workload.prompt_tokens": list(settings.contexts),
            "workload.batch": list(settings.batches),
        },
    }
    records = simulate(doc).records()
    return {(r["point"]["workload.prompt_tokens"], r["point"]["workload.batch"]): r for r in records}


def run_validation(settings: Settings) -> dict:
    """Measure every (context, batch) point, predict it, and return the report dict."""
    from roofline.api import versions
    from roofline.models import load_model

    arch = load_model(settings.model)
    check_supported(arch)
    device = torch.device(settings.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype_bytes = torch.finfo(dtype).bits // 8
    layers = settings.layers or default_layers(arch, device, settings.contexts, settings.batches, dtype_bytes)
    predicted = predictions(settings)  # validates names and calibration before the slow part

    torch.manual_seed(0)
    model = Decoder(arch, layers, dtype, device)
    graphs = device.type == "cuda" and not model.has_moe
    full, built = arch.num_layers, model.num_layers
    points, problems = [], []
    for prompt in settings.contexts:
        for batch in settings.batches:
            config = {"prompt_tokens": prompt, "batch": batch}
            try:
                m = measure_point(model, prompt, batch, graphs)
            except torch.OutOfMemoryError:
                problems.append(
                    f"prompt_tokens={prompt} batch={batch}: out of GPU memory with {built} layers"
                )
                continue
            rec = predicted[(prompt, batch)]
            for metric, total, outside in (
                ("ttft_s", m["prefill_s"], m["prefill_outside_s"]),
                ("tpot_s", m["decode_s"], m["decode_outside_s"]),
            ):
                points.append(
                    rep.point(
                        metric,
                        config,
                        scaled(total, outside, built, full),
                        rec[metric],
                        measured_built_s=total,
                        outside_layers_s=outside,
                        fits=rec["fits"],
                        **({"decode_mode": m["decode_mode"]} if metric == "tpot_s" else {}),
                    )
                )
    notes = list(settings.notes)
    samples = f"{MIN_ITERS}..{MAX_ITERS}" if device.type == "cuda" else str(MIN_ITERS)
    if device.type == "cpu":
        notes.append(
            f"measured on CPU in fp32 and simulated as bf16 on {settings.hardware}: this exercises the "
            "validation pipeline only and says nothing about the simulator's accuracy"
        )
    if not graphs and device.type == "cuda":
        notes.append(
            "decode ran eagerly (MoE routing is data-dependent; no CUDA graph): launch overhead included"
        )
    if any(g[0].window for g in model.groups):
        notes.append("sliding-window prefill uses banded masks (SDPA masked backend, not flash)")
    provenance = {
        "kind": "model",
        "model": arch.name,
        "model_source": settings.model,
        "hardware": settings.hardware,
        "device": device_name(device),
        "date": rep.today(),
        "versions": {**versions(), **_torch_versions()},
        "calibration": sorted({r["provenance"]["calibration"] for r in predicted.values()}),
        "measured_dtype": str(dtype).removeprefix("torch."),
        "simulated_dtype": "bf16",
        "layers_built": built,
        "layers_full": full,
        "layers_built_by_kind": {_kind(mixer, ffn): count for mixer, ffn, count in model.groups},
        "scaling": "measured_s = outside + (built_measured - outside) * layers_full / layers_built; "
        "outside = embedding + final norm + LM head + sampling, timed on their own",
        "timing": ("CUDA events" if device.type == "cuda" else "host clock (synchronous CPU ops)")
        + f", median of {samples} samples after {WARMUP} warm-up calls",
        "decode": "CUDA graph" if graphs else "eager",
        "sampling": "greedy (softmax + argmax)",
        "simulated_output_tokens": 2,
        "error_definition": "(predicted - measured) / measured",
        "notes": notes,
    }
    report = {
        "provenance": provenance,
        "points": points,
        "summary": rep.summarize(points),
        "problems": problems,
    }
    if settings.kernels:
        from roofline.profilers.validate_kernels import validate_kernels

        del model
        report["kernels"] = validate_kernels(settings, arch, device)
    return report


def _kind(mixer, ffn) -> str:
    label = "attention" + (f"(window={mixer.window})" if mixer.window else "")
    return f"{label}+{ffn.kind}"


def _torch_versions() -> dict:
    out = {"torch": str(torch.__version__)}
    if torch.version.cuda:
        out["cuda"] = torch.version.cuda
    try:
        import triton

        out["triton"] = triton.__version__
    except ImportError:
        pass
    return out
