"""`roofline models list|show NAME`: the model zoo (or any config.json) with sizes and layer kinds."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list zoo models or show one's shapes",
        description="List zoo models, or show one model's parameters, KV bytes per token and layer kinds.",
    )
    s = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    s.add_parser("list", help="one line per zoo model", description="List the zoo models.")
    show = s.add_parser(
        "show", help="one model's sizes", description="Show a zoo model or a Hugging Face config.json."
    )
    show.add_argument("name", help="zoo name (e.g. llama-3.1-8b) or path to a config.json")
    show.add_argument(
        "--kv-dtype", default="bf16", help="KV-cache format for the bytes-per-token figure (default bf16)"
    )


def run(args) -> int:
    from roofline.models import list_models, load_model, zoo_index
    from roofline.simulator.units import DTYPE_BYTES

    if args.models_command == "list":
        print(
            f"{'name':<18} {'params':>9} {'active':>9} {'layers':>6} {'KV/token bf16':>14} {'context':>9}  layer kinds"
        )
        for name in list_models():
            m = load_model(name)
            kinds = ", ".join(f"{k} x{v}" for k, v in m.layer_kinds().items())
            print(
                f"{name:<18} {m.total_params() / 1e9:>8.2f}B {m.active_params() / 1e9:>8.2f}B {m.num_layers:>6} "
                f"{m.kv_bytes_per_token(2.0) / 1024:>10.1f} KiB {m.max_context_tokens:>9}  {kinds}"
            )
        return 0
    if args.kv_dtype not in DTYPE_BYTES:
        from roofline.simulator.scenario import ScenarioError

        raise ScenarioError([f"--kv-dtype {args.kv_dtype!r}: valid: {', '.join(DTYPE_BYTES)}"])
    m = load_model(args.name)
    print(f"{m.name} ({m.family or 'custom'})")
    print(f"  parameters        {m.total_params():,} total, {m.active_params():,} active per token")
    entry = zoo_index().get(args.name)
    if entry:
        print(f"  published         {entry['published_params']:.4g} ({entry['params_source']})")
    print(f"  hidden / vocab    {m.hidden_size} / {m.vocab_size}, tied embeddings: {m.tie_embeddings}")
    print(
        f"  KV per token      {m.kv_bytes_per_token(DTYPE_BYTES[args.kv_dtype]):,.0f} bytes in {args.kv_dtype} (all layers, before any window cap)"
    )
    state = m.state_bytes_per_sequence()
    if state:
        print(f"  recurrent state   {state:,.0f} bytes per sequence (linear-attention / SSM layers)")
    print(f"  context           {m.max_context_tokens} tokens supported")
    print("  layers")
    for k, v in m.layer_kinds().items():
        print(f"    {v:>4} x {k}")
    _print_understood(m, DTYPE_BYTES[args.kv_dtype], args.kv_dtype)
    return 0


def _print_understood(m, kv_bytes: float, kv_dtype: str) -> None:
    """What the config was read as, so a user can check it against the model card: parameters by
    kind, KV per token with window/chunk caps applied at the supported context, state per sequence."""
    h = m.hidden_size
    print("  understood as")
    print(f"    layers          {m.num_layers} ({', '.join(f'{v} {k}' for k, v in m.layer_kinds().items())})")
    print(
        f"    params          {m.total_params() / 1e9:.3f}B total, {m.active_params() / 1e9:.3f}B active "
        f"(embeddings {m.embedding_params() / 1e9:.3f}B, tied: {m.tie_embeddings})"
    )
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
        print(f"    {g.count:>4} x {g.mixer.kind}: {g.mixer.params(h):,} mixer params, {ffn}")
    ctx = m.max_context_tokens
    print(
        f"    KV/token        {m.kv_bytes_per_token(kv_bytes):,.0f} bytes in {kv_dtype} uncapped"
        + (
            f"; {m.kv_elements_per_token(ctx) * kv_bytes:,.0f} at {ctx} tokens (windows capped)"
            if ctx
            else ""
        )
    )
    print(f"    state/sequence  {m.state_bytes_per_sequence():,.0f} bytes (bf16 conv windows, fp32 states)")
