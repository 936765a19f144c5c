"""Text views of the registries, for `roofline hw`, `roofline models`, `roofline methods` and the
scenario fields in `roofline simulate --help`: one line per hardware SKU, zoo model, method or field,
and one entry in full (specs with their sources, a model's sizes as the config was understood, a
method's parameters with help and ranges).

Each function takes what the registry loaders return (`HardwareSpec`, `ModelArch`, method classes)
and returns the text; the faces decide where it goes. Importing it stays light (no numpy), as it
builds the CLI's help.
"""

from __future__ import annotations

import sys

from roofline.simulator.scenario_schema import SCHEMA


def scenario_fields() -> str:
    """One line per scenario field: its dotted path and help text."""
    return "\n".join(f"  {path:<32} {spec.help}" for path, spec in SCHEMA.items())


def field_help(path: str) -> str:
    """A scenario field's help text (for the one-line flags' --help)."""
    return SCHEMA[path].help


def hardware_list(specs: list) -> str:
    """One line per SKU: memory, HBM bandwidth, bf16 and fp8 peaks, TDP, price, display name.
    `specs` is [(registry name, HardwareSpec)]."""
    lines = [
        f"{'name':<16} {'memory':>10} {'HBM TB/s':>9} {'bf16 TFLOP/s':>13} {'fp8':>7} {'TDP W':>6} {'$/h':>6}  display name"
    ]
    for name, hw in specs:
        fp8 = f"{hw.peak_flops['fp8'] / 1e12:.0f}" if "fp8" in hw.peak_flops else "-"
        lines.append(
            f"{name:<16} {hw.memory_bytes / 2**30:>6.1f} GiB {hw.memory_bandwidth / 1e12:>9.3g} "
            f"{hw.peak('bf16') / 1e12:>13.1f} {fp8:>7} {hw.tdp_w:>6.0f} {hw.usd_per_gpu_hour:>6.2f}  {hw.display_name}"
        )
    return "\n".join(lines)


def hardware_sheet(hw) -> str:
    """Every spec of one SKU with the key of its source, derived figures, then the sources."""
    src = hw.section_sources
    peaks = ", ".join(f"{k} {v / 1e12:g}" for k, v in hw.peak_flops.items())
    lines = [
        f"{hw.name}: {hw.display_name} ({hw.vendor} {hw.architecture})",
        f"  memory             {hw.memory_bytes / 2**30:.1f} GiB at {hw.memory_bandwidth / 1e12:.3g} TB/s   [{src['memory']}]",
        f"  dense TFLOP/s      {peaks}   [{src['compute_dense_TFLOPs']}]",
        f"  ridge point        {hw.ridge_point:.0f} FLOP/byte (bf16)",
        f"  chip               {hw.sm_count} SMs/CUs, {hw.boost_clock_hz / 1e6:.0f} MHz, L2 {hw.l2_bytes / 2**20:.0f} MiB, {hw.smem_per_sm_bytes / 1024:.0f} KiB shared/SM   [{src['chip']}]",
        f"  power              {hw.tdp_w:.0f} W   [{src['power']}]",
        f"  host link          {hw.host_link_kind} {hw.host_link_bandwidth / 1e9:g} GB/s per direction   [{src['host_link']}]",
        f"  host memory        {hw.host_memory_bytes / 2**30:g} GiB per GPU ({hw.host_memory_system})   [{src['host_memory']}]",
        *([f"  host CPU           {hw.host_cpu}: host work {hw.host_cpu_factor:g}x an x86 server's   [{src['host_cpu']}]"] if hw.host_cpu else []),
        f"  scale-up           {hw.scale_up_kind} {hw.scale_up_bandwidth / 1e9:g} GB/s per direction, domain {hw.scale_up_domain}   [{src['scale_up']}]",
        f"  price              ${hw.usd_per_gpu_hour:.2f} per GPU-hour   [{src['price']}]",
    ]  # fmt: skip
    if hw.unconfirmed:
        lines.append(f"  unconfirmed        {', '.join(hw.unconfirmed)}")
    lines.append("sources:")
    lines += [f"  [{key}] {text}" for key, text in hw.sources.items()]
    if hw.notes:
        lines.append(f"notes: {hw.notes}")
    return "\n".join(lines)


def model_list(models: list) -> str:
    """One line per model: parameters (total, active), layers, bf16 KV per token, context, layer kinds.
    `models` is [(zoo name, ModelArch)]."""
    lines = [
        f"{'name':<18} {'params':>9} {'active':>9} {'layers':>6} {'KV/token bf16':>14} {'context':>9}  layer kinds"
    ]
    for name, m in models:
        kinds = ", ".join(f"{k} x{v}" for k, v in m.layer_kinds().items())
        lines.append(
            f"{name:<18} {m.total_params() / 1e9:>8.2f}B {m.active_params() / 1e9:>8.2f}B {m.num_layers:>6} "
            f"{m.kv_bytes_per_token(2.0) / 1024:>10.1f} KiB {m.max_context_tokens:>9}  {kinds}"
        )
    return "\n".join(lines)


def model_sheet(m, zoo_entry: dict | None, kv_bytes: float, kv_dtype: str) -> str:
    """One model's sizes (with the published parameter count when it is a zoo model), KV bytes per
    token in `kv_dtype` (`kv_bytes` per element), layer kinds, then what the config was read as."""
    lines = [
        f"{m.name} ({m.family or 'custom'})",
        f"  parameters        {m.total_params():,} total, {m.active_params():,} active per token",
    ]
    if zoo_entry:
        lines.append(
            f"  published         {zoo_entry['published_params']:.4g} ({zoo_entry['params_source']})"
        )
    lines += [
        f"  hidden / vocab    {m.hidden_size} / {m.vocab_size}, tied embeddings: {m.tie_embeddings}",
        f"  KV per token      {m.kv_bytes_per_token(kv_bytes):,.0f} bytes in {kv_dtype} (all layers, before any window cap)",
    ]
    state = m.state_bytes_per_sequence()
    if state:
        lines.append(f"  recurrent state   {state:,.0f} bytes per sequence (linear-attention / SSM layers)")
    lines.append(f"  context           {m.max_context_tokens} tokens supported")
    lines.append("  layers")
    lines += [f"    {v:>4} x {k}" for k, v in m.layer_kinds().items()]
    return "\n".join(lines + _understood(m, kv_bytes, kv_dtype))


def _understood(m, kv_bytes: float, kv_dtype: str) -> list:
    """What the config was read as, so a user can check it against the model card: parameters by
    kind, KV per token with window/chunk caps applied at the supported context, state per sequence."""
    h = m.hidden_size
    lines = [
        "  understood as",
        f"    layers          {m.num_layers} ({', '.join(f'{v} {k}' for k, v in m.layer_kinds().items())})",
        f"    params          {m.total_params() / 1e9:.3f}B total, {m.active_params() / 1e9:.3f}B active "
        f"(embeddings {m.embedding_params() / 1e9:.3f}B, tied: {m.tie_embeddings})",
    ]
    for g in m.layer_groups:
        f = g.ffn
        if f is None:
            ffn = "no FFN"
        elif f.kind == "moe":
            ffn = f"MoE {f.num_experts} experts top-{f.top_k} of width {f.expert_intermediate}"
            if f.shared_intermediate:
                ffn += f" + shared {f.shared_intermediate}"
        else:
            ffn = f"dense FFN {f.intermediate}"
        lines.append(f"    {g.count:>4} x {g.mixer.kind}: {g.mixer.params(h):,} mixer params, {ffn}")
    ctx = m.max_context_tokens
    lines.append(
        f"    KV/token        {m.kv_bytes_per_token(kv_bytes):,.0f} bytes in {kv_dtype} uncapped"
        + (
            f"; {m.kv_elements_per_token(ctx) * kv_bytes:,.0f} at {ctx} tokens (windows capped)"
            if ctx
            else ""
        )
    )
    lines.append(
        f"    state/sequence  {m.state_bytes_per_sequence():,.0f} bytes (bf16 conv windows, fp32 states)"
    )
    return lines


def method_list(methods) -> str:
    """Three lines per method class: name and summary, parameter names, citation."""
    lines = []
    for cls in methods:
        lines += [
            f"{cls.name:<22} {cls.summary}",
            f"{'':<22} parameters: {', '.join(cls.params) or '-'}",
            f"{'':<22} {cls.citation}",
        ]
    lines.append("\n`roofline methods NAME` shows one method's parameters with help and ranges.")
    return "\n".join(lines)


def method_sheet(cls) -> str:
    """One method class in full: what it changes, its citation, each parameter's help, kind, default
    and ranges, then the docstring of its module."""
    lines = [
        f"{cls.name}: {cls.summary}",
        f"  changes:  {cls.changes}",
        f"  citation: {cls.citation}",
        "  parameters:",
    ]
    lines += [_param_line(name, p) for name, p in cls.params.items()]
    module = sys.modules.get(cls.__module__)
    doc = ((module.__doc__ if module else None) or "").strip()
    if doc:
        lines.append("\n" + doc)
    return "\n".join(lines)


def _param_line(name, p) -> str:
    from roofline.simulator.methods.base_method import REQUIRED  # numpy: only when a method is shown

    default = "required" if p.default is REQUIRED else f"default {p.default!r}"
    rng = f"; {p.range_text()}" if p.range_text() else ""
    validated = f"; paper evaluated {p.validated[0]:g}..{p.validated[1]:g}" if p.validated else ""
    return f"    {name:<24} {p.help} ({p.kind}, {default}{rng}{validated})"
