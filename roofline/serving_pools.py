"""The replicas of `roofline serve`: one kind of replica sized and priced (`build_pool`: its KV cache
from `simulate`'s memory model, its step costs, its power), the checks that every request fits it,
and the runs of its schedulers (`run_replicas`): dealt round-robin and run one by one, in
lockstep groups where ranks share their experts, or routed as they arrive (`serving.routing`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from roofline.simulator.economics import gpu_power_w
from roofline.simulator.errors import UserError
from roofline.simulator.frameworks import framework
from roofline.simulator.memory import KVModel
from roofline.simulator.serving.config import ServingConfig, resolved
from roofline.simulator.serving.replica import Engine
from roofline.simulator.serving.routing import simulate_routed
from roofline.simulator.serving.scheduler import groups as lockstep_groups
from roofline.simulator.serving.scheduler import simulate as run_replica
from roofline.simulator.serving.scheduler import simulate_group
from roofline.simulator.serving.stepcost import FastStep
from roofline.simulator.serving.workload import Requests, split
from roofline.simulator.units import GIB


def kv_capacity(sc, steps, cfg: ServingConfig, simulate) -> tuple:
    """(KV blocks per replica, bytes per block per GPU, recurrent-state blocks per sequence, host
    bytes per GPU). The framework's KV budget (`frameworks.Framework.kv_budget`: vLLM's share of the
    whole memory less what the rest holds, SGLang's less its reserve and the weights, or a share of
    the memory the rest leaves) beside weights,
    runtime overhead and the activations of a full step (`max_batched_tokens` rows, from
    `simulate`'s memory model), in blocks of block_tokens tokens of KV (`memory.KVModel`'s bytes per
    token on the most loaded GPU)."""
    base = dict(sc.base)
    base.update(
        {
            "workload.batch": 1,
            "workload.prompt_tokens": cfg.max_batched_tokens,
            "workload.output_tokens": 1,
            "workload.shared_prefix_tokens": 0,
            "workload.prefill_chunk_tokens": None,
        }
    )
    rec = simulate(replace(sc, base=base)).records()[0]
    mem = rec["memory"]
    lay, fmt = steps.layout, steps.dep.fmt
    budget, of, whole = framework(lay.framework).kv_budget(
        mem["capacity_bytes"],
        mem["weights_bytes"],
        mem["overhead_bytes"] + mem["activation_bytes"],
        cfg.kv_memory_fraction,
        cfg.gpu_memory_utilization,
        lay.tp * lay.pp,
        lay.lockstep_ranks > 1,
    )
    if budget <= 0:
        raise UserError(
            f"{sc.name}: nothing is left for the KV cache: weights {mem['weights_bytes'] / GIB:.1f} GiB + activations "
            f"{mem['activation_bytes'] / GIB:.1f} GiB + overhead {mem['overhead_bytes'] / GIB:.1f} GiB per GPU fill "
            f"{of}; use more GPUs (tp, pp), lower-precision weights, or a smaller max_batched_tokens"
            + (", or a higher gpu_memory_utilization" if whole else "")
        )
    kv = KVModel(steps.model, lay.tp, lay.pp, fmt.kb, fmt.rb, steps.plan, lay.cp, lay.window_kv_share)
    b = cfg.block_tokens
    block_bytes = float(np.asarray(kv.per_sequence(b, b) - kv.state))
    if block_bytes <= 0:  # attention-free model: only recurrent state
        block_bytes = float(max(kv.state, 1.0))
    state_blocks = int(np.ceil(float(kv.state) / block_bytes)) if kv.state else 0
    blocks = int(budget // block_bytes)
    return blocks, block_bytes, state_blocks, rec, _capped_kv(kv, b)


def _capped_kv(kv, b: int):
    """Context tokens -> KV bytes a sequence holds, where a window or a method caps it (the
    scheduler's blocks follow it: `Engine.blocks`); None where every token keeps its KV (one block
    per b tokens, exactly)."""

    def held(tokens):
        return np.asarray(kv.per_sequence(tokens, tokens), float) - float(kv.state)

    probe = np.array([b, 1e3 * b, 1e5], float)
    per_token = float(held(np.array([float(b)]))[0]) / b
    if np.allclose(held(probe), probe * per_token, rtol=1e-12):
        return None
    return held


@dataclass
class Pool:
    """One kind of replica: its layout, step costs, KV cache and scheduler settings."""

    engine: Engine
    fast: FastStep
    gpus: int  # per replica
    blocks: int
    block_bytes: float
    state_blocks: int
    power: object
    rec: dict  # the `simulate` record its memory was sized from
    steps: object


def build_pool(sc, cfg: ServingConfig, hw, simulate, step_model) -> Pool:
    steps = step_model(sc)
    cfg = resolved(cfg, steps.layout.framework, hw)  # the framework's limits where none are given
    fast = FastStep(steps)
    blocks, block_bytes, state_blocks, rec, kv_bytes = kv_capacity(sc, steps, cfg, simulate)
    host_bytes = (
        sc.base["runtime.host_memory_GiB"] * GIB
        if sc.base["runtime.host_memory_GiB"] is not None
        else float(hw.host_memory_bytes)
    )
    host_cache = host_bytes if cfg.host_GiB is None else cfg.host_GiB * GIB
    lay = steps.layout
    host_rate = float(np.asarray(steps.dep.rates.host_rate))
    engine = Engine(
        step=fast,
        block_tokens=cfg.block_tokens,
        total_blocks=blocks,
        state_blocks=state_blocks,
        block_bytes=block_bytes,
        host_rate=host_rate,
        swap_blocks=int(max(host_bytes - (host_cache if cfg.prefix_cache else 0.0), 0.0) // block_bytes),
        host_cache_blocks=int(host_cache // block_bytes) if cfg.prefix_cache else 0,
        ssd_cache_blocks=int(cfg.ssd_GiB * GIB // block_bytes) if cfg.prefix_cache else 0,
        ssd_rate=min(cfg.ssd_GBps * 1e9, host_rate),
        max_num_seqs=_running(cfg, lay, blocks, steps.model),
        max_batched_tokens=cfg.max_batched_tokens,
        preemption=cfg.preemption,
        reserve=cfg.admission == "reserve",
        chunked=cfg.chunked_prefill,
        mixed=cfg.mixed_batches is not False,
        policy=cfg.policy,
        prefix_cache=cfg.prefix_cache,
        kv_bytes=kv_bytes,
    )
    peak = float(np.asarray(steps.dep.rates.mfu_peak))  # as the step's own MFU
    bw = float(np.asarray(steps.dep.rates.bw))
    pp = lay.pp

    def power(flops, byts, dt):
        """Watts per GPU of each step: economics.gpu_power_w at the busier of MFU and MBU."""
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.maximum(flops / pp / (dt * peak), byts / pp / (dt * bw))
        return gpu_power_w(hw.tdp_w, np.nan_to_num(util))

    return Pool(engine, fast, lay.gpus // lay.dp, blocks, block_bytes, state_blocks, power, rec, steps)


def _running(cfg: ServingConfig, lay, blocks: int, model) -> int:
    """max_num_seqs as given or the framework's (`serving.config.resolved`), else derived from the KV
    pool as SGLang does (`frameworks.Framework.max_running`: its tokens, the model's context length)."""
    if cfg.max_num_seqs is not None:
        return cfg.max_num_seqs
    return framework(lay.framework).max_running(blocks * cfg.block_tokens, model.max_context_tokens)


def scheduler_record(pool: Pool) -> dict:
    """The limits the pool's scheduler ran with (the framework's defaults where the scenario gave none)."""
    eng = pool.engine
    return {
        "max_num_seqs": eng.max_num_seqs,
        "max_batched_tokens": eng.max_batched_tokens,
        "chunked_prefill": eng.chunked,
        "mixed_batches": eng.mixed,
        "admission": "reserve" if eng.reserve else "on_demand",
    }


def check_fits(name: str, req, pool: Pool, b: int) -> None:
    eng = pool.engine
    if not eng.chunked and req.n and int(req.prompt.max()) > eng.max_batched_tokens:
        longest = int(np.argmax(req.prompt))
        raise UserError(
            f"{name}: request {longest}'s prompt ({int(req.prompt[longest])} tokens) is longer than "
            f"serving.scheduler.max_batched_tokens ({eng.max_batched_tokens}), and with chunked_prefill false "
            "a prompt runs whole in one step; raise max_batched_tokens to at least the longest prompt "
            "(TensorRT-LLM forces max_num_tokens >= the longest input plus max_batch_size) or set "
            "chunked_prefill true"
        )
    need = -(-(req.prompt + req.output) // b) + pool.state_blocks
    worst = int(np.argmax(need))
    if need[worst] > pool.blocks:
        raise UserError(
            f"{name}: request {worst} ({int(req.prompt[worst])} prompt + {int(req.output[worst])} output tokens) "
            f"needs {int(need[worst])} KV blocks of {b} tokens, but the KV cache holds {pool.blocks} on this "
            "deployment (per scheduler: one of pp with pipeline parallelism); use more GPUs (tp), a "
            "KV-compressing method, or shorter requests"
        )


def run_replicas(req: Requests, replicas: int, pool: Pool, routing: str, hold_s=None) -> list:
    """[(indices into req, their Requests, their Timeline)] of the `replicas` schedulers of `pool`
    that served any (an aggregated deployment's dp x pp, or one pool of a disaggregated one): dealt
    round-robin before the run (`routing` round_robin) or as they arrive (`routing.simulate_routed`);
    where the pool's ranks share their experts (`Layout.lockstep_ranks`) each group of them steps in
    lockstep (`scheduler.simulate_group`), else each replica on its own. `hold_s`: per request of
    req, seconds its KV stays after it finishes (`scheduler.simulate`)."""
    group = pool.steps.layout.lockstep_ranks
    if routing != "round_robin" and replicas > 1:
        return simulate_routed(req, pool.engine, pool.power, replicas, group, hold_s, routing)
    out = []
    for chunk in lockstep_groups(split(req, replicas), group):
        live = [(idx, part) for idx, part in chunk if part.n]
        holds = [None if hold_s is None else hold_s[idx] for idx, _ in live]
        if group == 1:
            tls = [run_replica(part, pool.engine, pool.power, h) for (_, part), h in zip(live, holds)]
        else:
            tls = simulate_group([part for _, part in live], pool.engine, pool.power, group, holds)
        out += [(idx, part, tl) for (idx, part), tl in zip(live, tls)]
    return out


def micro_batches(pool: Pool, pp: int) -> Pool:
    """A replica of pp pipeline stages as the engines run it: pp micro-batches in flight, each with
    its own scheduler, requests and 1/pp of the KV blocks (vLLM's virtual engines: each scheduler
    gets num_gpu_blocks // pipeline_parallel_size and the full max_num_seqs; TensorRT-LLM keeps pp
    micro-batches in flight likewise). Each micro-batch's step is the pass through every stage
    (`stepcost`), and the pp of them keep every stage busy, so the replica serves pp times one
    scheduler's tokens at the same step time. Each is charged 1/pp of the GPUs, busy at pp times
    its own step's utilisation."""
    if pp == 1:
        return pool
    base_power = pool.power

    def power(flops, byts, dt):
        return base_power(flops * pp, byts * pp, dt)

    engine = replace(
        pool.engine,
        total_blocks=pool.blocks // pp,
        swap_blocks=pool.engine.swap_blocks // pp,
        host_cache_blocks=pool.engine.host_cache_blocks // pp,
        ssd_cache_blocks=pool.engine.ssd_cache_blocks // pp,
    )
    return replace(pool, engine=engine, power=power, gpus=pool.gpus // pp, blocks=pool.blocks // pp)


def kv_cache_record(pool: Pool, b: int) -> dict:
    return {
        "blocks": pool.blocks,
        "block_tokens": b,
        "block_bytes": pool.block_bytes,
        "tokens": pool.blocks * b,
    }
