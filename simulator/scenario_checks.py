"""Scenario checks that need the model itself, run once a scenario has passed `scenario.validate`.

`validate` checks fields, names and the layout's arithmetic without loading anything. What it
cannot know is whether the chosen models accept the rest: a method's model requirements, a draft
model's vocabulary, an expert-parallel degree against the experts, a tensor-parallel degree or a
Ulysses split against the attention heads. Every model the scenario sweeps over is checked. Loading is the caller's:
`get_model(name)` returns a ModelArch or raises ModelConfigError.
"""

from __future__ import annotations

from roofline.simulator.methods import model_problems, referenced_models
from roofline.simulator.model import ModelConfigError
from roofline.simulator.opinputs import per_rank


def _swept(scenario, path: str) -> list:
    """The values a field takes over the sweep (its one value when not swept)."""
    return dict(scenario.sweep).get(path, [scenario.base[path]])


def _draft_problems(scenario, get_model, where: str) -> list:
    """Draft models must load and share the target's vocabulary (one tokenizer)."""
    problems = []
    for draft in referenced_models(scenario.stack):
        try:
            draft_vocab = get_model(draft).vocab_size
        except ModelConfigError as exc:
            problems.append(f"{where}: methods: draft_model: {exc}")
            continue
        for name in _swept(scenario, "model"):
            vocab = get_model(name).vocab_size
            if draft_vocab != vocab:
                problems.append(
                    f"{where}: methods: draft_model {draft} has a {draft_vocab}-token vocabulary but {name} "
                    f"has {vocab}: speculative decoding needs the target's tokenizer"
                )
    return problems


MAX_TP_LISTED = 64  # valid tp values are listed up to this degree


def tp_shards_evenly(mixer, tp: int) -> bool:
    """Whether tensor parallelism of degree `tp` splits an attention layer's heads as serving
    engines require (vLLM, TensorRT-LLM): the query heads divide by tp, and the KV heads either
    divide by tp or, fewer than tp, are replicated an equal number of times (tp a multiple of them).
    MLA's latent is replicated on every rank, so only its query heads count."""
    if mixer.num_heads % tp:
        return False
    if mixer.kind != "attention":
        return True
    kv = mixer.num_kv_heads
    return kv % tp == 0 if kv >= tp else tp % kv == 0


def _tp_problems(scenario, model, name: str, where: str) -> list:
    """tp must shard every softmax-attention layer evenly (`tp_shards_evenly`). Linear-attention and
    SSM mixers are left to the cost model, which rounds their shards up and says so in a warning."""
    mixers = {g.mixer for g in model.layer_groups if g.mixer.kind in ("attention", "mla")}
    problems = []
    for tp in _swept(scenario, "parallelism.tp"):
        if tp > 1 and not all(tp_shards_evenly(m, tp) for m in mixers):
            valid = [t for t in range(1, MAX_TP_LISTED + 1) if all(tp_shards_evenly(m, t) for m in mixers)]
            m = min(mixers, key=lambda m: m.num_heads)
            kv = f" and {m.num_kv_heads} KV heads" if m.kind == "attention" else ""
            problems.append(
                f"{where}: parallelism.tp: tp={tp} does not split {name}'s {m.num_heads} attention heads{kv} "
                f"evenly over the GPUs; valid tp: {', '.join(map(str, valid))}"
            )
    return problems


def expert_split_problem(model, name: str, ep: int) -> str | None:
    """Why expert parallelism `ep` cannot split `model`'s routed experts (None: it can)."""
    experts = model.expert_counts
    if ep > 1 and not experts:
        return f"{name} has no experts to split (ep={ep}); use ep: 1"
    if ep > 1 and any(e % ep for e in experts):
        return f"{name}'s {experts[0]} experts do not split evenly over ep={ep}"
    return None


def _layout_problems(scenario, get_model, where: str) -> list:
    """Layout constraints that depend on the model: EP needs experts to split, Ulysses needs heads."""
    problems = []
    variants = _swept(scenario, "parallelism.cp_variant")
    for name in _swept(scenario, "model"):
        model = get_model(name)
        problems += _tp_problems(scenario, model, name, where)
        heads = [g.mixer.num_heads for g in model.layer_groups if g.mixer.kind in ("attention", "mla")]
        for ep in _swept(scenario, "parallelism.ep"):
            problem = expert_split_problem(model, name, ep)
            if problem:
                problems.append(f"{where}: parallelism.ep: {problem}")
        for cp in _swept(scenario, "parallelism.cp"):
            for tp in _swept(scenario, "parallelism.tp"):
                if cp > 1 and "ulysses" in variants and any(per_rank(h, max(tp, 1)) % cp for h in heads):
                    problems.append(
                        f"{where}: parallelism.cp: ulysses shards attention heads, but {name}'s {heads[0]} heads "
                        f"over tp={tp} do not split into cp={cp}; use pass-kv or pass-q"
                    )
    return problems


def model_dependent_problems(scenario, get_model, where: str) -> list:
    """Problems between a validated scenario and its models: methods, draft models, EP, Ulysses."""
    problems = [
        f"{where}: methods: {p}"
        for name in _swept(scenario, "model")
        for p in model_problems(scenario.stack, get_model(name))
    ]
    return (
        problems + _draft_problems(scenario, get_model, where) + _layout_problems(scenario, get_model, where)
    )
