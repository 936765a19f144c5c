"""Communication and sharding of context parallelism (CP) and expert parallelism (EP).

CP (Context Parallelism for Scalable Million-Token Inference, arXiv:2411.01783; DeepSpeed-Ulysses,
arXiv:2309.14509): each of cp ranks holds 1/cp of every sequence's tokens (load-balanced 2N
chunking, so causal attention work splits evenly) and 1/cp of its KV cache.
* prefill pass-KV: K/V blocks travel the ring, (cp-1) send/recv steps per layer, overlapped with
  attention of the resident block (the `overlap` policy);
* prefill pass-Q: queries travel the ring instead and partial outputs (with log-sum-exp) return by
  all-to-all: cheaper when most KV is already cached (partial KV-cache hits, multi-turn prefill);
* Ulysses: all-to-all from sequence to head sharding before attention (Q, K, V) and back after (O).
* decode (pass-Q): every rank attends the new tokens' queries over its KV shard; queries are
  all-gathered and partial outputs exchanged by all-to-all each layer (latency-bound, hence the
  slower decode of CP in the paper's Table 6).

Against Table 6 of the CP paper (Llama-3 405B, 500 W H100 variant, FP8 weights, batch 1): TTFT of
TP8 and CP2+TP8 is within -13%..+4% at 8K-128K and the CP2/TP8 ratio within 0.50-0.51 (paper
0.50-0.57); TP8 decode is 1-5% low with the paper's eager PyTorch stack (`runtime.framework: hf`;
14-19% low without the framework's launches). CP2+TP8 decode is ~32% low: the
paper measures +21 ms per token over TP8 (~167 us per layer) where the model's two small
inter-node collectives per layer cost ~16 us at the fabric's assumed 8 us step latency. The
paper's decode path pays much more per cross-node exchange than NCCL's small-message latency;
measured fabric latencies (`roofline calibrate` with the collective microbenchmarks) replace the
assumption.

EP: experts split over ep GPUs (a multiple of tp within the tp x dp GPUs); tokens are split across
the tp ranks, dispatched to their experts and combined back by all-to-all, then all-gathered over
tp. Each GPU holds E/ep whole experts. Dispatch sends a token once per destination GPU holding any
of its top-k experts (DeepEP, DeepSeek-V3 §3.2.2: the copies for one GPU are deduplicated), and
across nodes once per destination node, forwarded over NVLink inside it; with group-limited
routing (DeepSeek-V3's n_group/topk_group, at most 4 nodes per token) the destinations are drawn
from the chosen groups only. Routing is taken as uniform (expected distinct GPUs and nodes under
random top-k), with no load imbalance.
"""

from __future__ import annotations

import numpy as np

from roofline.simulator import flops as F
from roofline.simulator.model import MLA
from roofline.simulator.opinputs import above_one
from roofline.simulator.ops import Op


def _comm(name: str, t, count) -> Op:
    return Op(
        name=name, kind="comm", flops=0.0, bytes=0.0, count=count, kernels=0.0, fixed_s=t, stream="comm"
    )


def cp_prefill_comm(ctx, m, heads: int, cached: float, count) -> list:
    """Per-layer CP communication in prefill (per pass), by variant (cp may be an array over points:
    the collectives of a one-rank group cost nothing)."""
    if not above_one(ctx.shard.cp):
        return []
    g = ctx.shard.groups["cp"]
    n = ctx.shard.cp
    if ctx.shard.cp_variant == "ulysses":
        return ulysses_prefill_comm(ctx, m, heads, g, count)
    if ctx.shard.cp_variant == "pass-q":
        q_block = ctx.shape.rows * heads * m.qk_dim * ctx.fmt.qb  # attention operands: its format
        partial = (
            ctx.shape.rows * heads * (m.v_dim + 1) * ctx.fmt.qb * n
        )  # outputs + LSE for every rank's block
        return [_comm("cp_pass_q", (n - 1) * g.p2p(q_block) + g.alltoall(partial), count * ctx.shape.passes)]
    # pass-KV: each rank's resident K/V block (its share of the tokens visible so far) goes around.
    visible = np.where(
        ctx.shape.passes > 1,
        ctx.shape.tokens * (ctx.shape.passes + 1) / (2 * ctx.shape.passes),
        ctx.shape.tokens,
    )
    kv_block = visible / n * cached * ctx.fmt.kb
    return [_comm("cp_pass_kv", (n - 1) * g.p2p(kv_block), count * ctx.shape.passes)]


def ulysses_prefill_comm(ctx, m, heads: int, g, count) -> list:
    """Ulysses (arXiv:2309.14509 §3.1): all-to-all from sequence to head sharding before attention
    and back after it. Each all-to-all's buffer is what one rank holds of every destination's share.

    * GQA/MHA: Q for all of this rank's heads, and K/V for the KV heads every destination needs:
      each of the cp ranks needs max(1, kv_heads / cp) KV heads (query heads split evenly; with
      fewer KV heads than ranks each KV head goes to cp / kv_heads ranks, so the buffer holds
      max(kv_heads, cp) heads' K and V). O comes back for all heads.
    * MLA: K and V are per head only after the up-projection of the shared latent, so the latent is
      all-gathered (every head shard needs the whole sequence's latent and rope key) and each rank
      up-projects its own heads; Q goes by all-to-all, O comes back the same way.
    """
    rows, ab, n = ctx.shape.rows, ctx.fmt.qb, ctx.shard.cp  # attention operands: its format
    q = rows * heads * m.qk_dim * ab
    out = rows * heads * m.v_dim * ab
    if isinstance(m, MLA):
        latent = rows * m.kv_elements_per_token() * ab
        t = g.alltoall(q) + g.allgather(latent * n) + g.alltoall(out)
    else:
        kv_heads = ctx.shard.kv_heads(m)
        kv = rows * 2 * np.maximum(kv_heads, n) * m.head_dim * ab
        t = g.alltoall(q + kv) + g.alltoall(out)
    return [_comm("ulysses_all_to_all", t, count * ctx.shape.passes)]


def cp_decode_comm(ctx, m, heads: int, count) -> list:
    """Per-layer CP communication of one decode step, ring pass-Q for every variant (arXiv:2411.01783
    Algorithm 4): the queries go around the ring, n - 1 send/recv steps, and the partial outputs
    with their LSE come back to their ranks by one all-to-all before the merge."""
    if not above_one(ctx.shard.cp):
        return []
    g, n = ctx.shard.groups["cp"], ctx.shard.cp
    q = ctx.shape.batch * ctx.shape.queries * heads * m.qk_dim * ctx.fmt.qb / n  # one rank's block
    partial = ctx.shape.batch * ctx.shape.queries * heads * (m.v_dim + 1) * ctx.fmt.qb
    return [_comm("cp_decode_exchange", (n - 1) * g.p2p(q) + g.alltoall(partial), count)]


def _miss(pool, per, k: int):
    """Probability that k distinct picks out of `pool` equally likely items all avoid a given set of
    `per` of them (hypergeometric): prod_{i<k} (pool - per - i) / (pool - i)."""
    out = 1.0
    for i in range(int(k)):
        out = out * np.maximum(pool - per - i, 0.0) / np.maximum(pool - i, 1.0)
    return out


def expected_destinations(f, units):
    """Expected number of `units` (GPUs or nodes, each holding E/units experts in order) that one
    token's top-k experts reach, under uniform routing and the model's group-limited routing.

    * a group spans whole units (units a multiple of the groups): the token's topk_group groups
      cover topk_group * units / groups units, and its k experts fall among their experts;
    * a unit holds whole groups: the units holding any of the chosen groups;
    * otherwise (or without group limits): k experts among all E.
    """
    units = np.asarray(units, dtype=float)
    e, k = float(f.num_experts), f.top_k
    groups, chosen = float(f.route_groups), f.route_groups_per_token
    plain = units * (1.0 - _miss(e, e / units, k))
    if groups <= 1:
        return plain
    spans = (units >= groups) & (np.mod(units, groups) == 0)
    pool = chosen * e / groups
    span_hit = chosen * units / groups * (1.0 - _miss(pool, e / units, k))
    holds = np.mod(groups, units) == 0
    hold_hit = units * (1.0 - _miss(groups, groups / units, chosen))
    return np.where(spans, span_hit, np.where(holds, hold_hit, plain))


def ep_dispatch_time(g, tokens, token_bytes, f):
    """One all-to-all dispatch (or combine) of `tokens` tokens per GPU over the ep group `g`, each
    token sent once per destination GPU (NVLink) and once per destination node (fabric) besides
    its own; the two run in parallel, paced by their step latencies."""
    n, n_intra, n_inter = float(g.n), np.asarray(g.n_intra, float), np.asarray(g.n_inter, float)
    gpus = expected_destinations(f, n)
    nodes = expected_destinations(f, n_inter)
    intra_out = tokens * token_bytes * gpus * (n - 1.0) / n
    inter_out = tokens * token_bytes * nodes * (n_inter - 1.0) / n_inter
    within = (n_intra - 1.0) * g.intra.step_latency_s + intra_out / g.intra.rate
    across = g.inter.exchange_latency(n_inter) + inter_out / g.inter.rate
    return np.where(n > 1, np.where(n_inter > 1, np.maximum(within, across), within), 0.0)


def ep_moe_ops(ctx, f, count, expert_ops) -> list:
    """Routed experts under expert parallelism (plus dispatch/combine all-to-all, tp all-gather)."""
    e, k, ep, tp, h = f.num_experts, f.top_k, ctx.shard.ep, ctx.shard.tp, ctx.shape.hidden
    pairs = ctx.shape.rows / tp * k  # tokens split across the tp ranks; balanced by symmetry
    group_tokens = ctx.shape.rows * ep / tp
    touched = F.touched_experts(group_tokens, k, e) / ep  # local experts hit at least once
    ops = expert_ops(ctx, pairs, touched, f.expert_intermediate, 2 if f.gated else 1, k, count)
    dispatch = ep_dispatch_time(ctx.shard.groups["ep"], ctx.shape.rows / tp, h * ctx.fmt.ab, f)
    ops.append(_comm("ep_dispatch_combine", 2.0 * dispatch, count * ctx.shape.passes))
    if tp > 1:
        ops.append(
            _comm(
                "ep_tp_allgather",
                ctx.shard.groups["tp"].allgather(ctx.shape.rows * h * ctx.fmt.rb),
                count * ctx.shape.passes,
            )
        )
    return ops
