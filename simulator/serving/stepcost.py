"""The step cost of a scheduler step, fast: `StepModel.cost` taken apart once, reassembled per step.

`StepModel.cost(new, cached)` builds the op list of one forward pass in Python (~0.3 ms); a run of
10,000 requests takes ~20,000 steps, so the serving loop prices steps here instead, from the same
parts, in a few numpy operations:

* token-parallel ops (everything outside the attention core: GEMMs, norms, MoE, Mamba, the model's
  edges, the methods' once-per-pass work) depend on the pass shape alone — its phase, total new rows,
  sequence count (and the longest context where a probe finds the ops reading it). They are costed
  once per distinct shape through `forward_ops` and `cost_op`, and memoised;
* the attention core is per sequence and `step._summed` adds its per-sequence compute times, memory
  times and fixed times before taking one roofline max per op. The per-sequence terms of a decoding
  sequence depend only on its cached length c (the step reads KV length c + 1), so they are tabulated
  once for c = 0 .. C by one vectorised call of the attention builders; those of a prefill chunk
  (new, cached) are memoised per pair, built vectorised over a step's unseen pairs;
* streams combine as in `PhaseTotals.of` (compute + comm under `serial`, their max under `overlap`;
  host-link work added, or overlapped under the plan's `host_overlap`; the framework's CPU iteration
  added, or overlapped by an overlap scheduler; with pp > 1, over the pp micro-batches in flight,
  and the serial relay of their sampled tokens added);
* kernels launch as the framework launches a pass of that phase (a step with a prompt chunk as its
  prefill, a pure decode step as its decode); the decode attention kernel streams at the share of
  the bandwidth its decoders x KV heads reach (`efficiency.decode_parallel_efficiency`): the table is
  built for one decoder and each slot's memory time rescaled by the step's decoder count, and a
  kernel's fixed latency (`Op.latency_s`) is counted once per step, not per sequence.

The result equals `StepModel.cost(new, cached).time_s` (tests/test_serving_stepcost.py asserts
rel 1e-9 on random mixed batches of several architectures and method stacks). The constructor checks
that on probe batches; where the parts do not reproduce the whole (a future change to StepModel this
module does not know of), `exact` is False and every step falls back to `StepModel.cost` — slower,
never wrong.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from roofline.simulator.attention import attention_core_ops
from roofline.simulator.decode_time import NodeKV, extended_nodes
from roofline.simulator.forward import forward_ops
from roofline.simulator.opinputs import Shape
from roofline.simulator.ops import value_at

# Per-slot quantities of the attention core: compute time, memory time, fixed time, FLOPs, bytes.
_TC, _TM, _FIX, _FL, _BY = range(5)
# (`sync`, host time the GPU waits for, adds to the step as compute does: PhaseTotals.of)
_STREAM = {"compute": 0, "comm": 1, "host": 2, "dispatch": 5, "sync": 0}
TABLE_CHUNK = 4096
PREFETCH = 48  # chunk sizes built either side of a missed prefill pair  # decode tables grow in whole chunks of cached lengths
VERIFY_REL = 1e-9
# The routed experts' ops (layers.expert_ops): under expert parallelism every rank's experts serve
# the tokens of all the ranks that share them
EXPERT_OPS = frozenset(("expert_up", "expert_act", "expert_down", "expert_combine"))


def _per_sequence(op, n: int, L) -> np.ndarray:
    """(5, n) per-sequence terms of a per-sequence op, as `step._summed` reads them."""
    flops, byts = value_at(op.flops, L), value_at(op.bytes, L)
    shape = (n,)
    flops = np.broadcast_to(np.asarray(flops, float), shape)
    byts = np.broadcast_to(np.asarray(byts, float), shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = np.broadcast_to(flops / op.compute_rate, shape)
        tm = np.broadcast_to(np.asarray(op.memory_s(L), float), shape)
    fixed = np.broadcast_to(np.asarray(op.fixed_s, float), shape)
    return np.stack([tc, tm, fixed, flops, byts])


def _summed_costs(costs, names=None) -> np.ndarray:
    """[compute, comm, host time, FLOPs, bytes, eager dispatch time] summed over op costs (those
    named in `names`)."""
    got = np.zeros(6)
    for c in costs:
        if names is None or c.name in names:
            got[_STREAM[c.stream]] += float(c.time_s)
            got[3] += float(c.flops)
            got[4] += float(c.bytes)
    return got


class FastStep:
    """Step times of a `StepModel` for batches given as (new, cached) integer arrays."""

    def __init__(self, steps, verify: bool = True):
        self.steps = steps
        self.cp = steps.layout.cp
        self.pp = steps.layout.pp
        self.overlap = steps.layout.overlap
        self.host_overlap = bool(steps.extras.host_overlap)
        self.overhead = float(np.asarray(steps.dep.overhead_s))
        self.fw = steps.framework()
        # A step with a prompt chunk launches as the framework's prefill, a pure decode step as its
        # decode, or eagerly where no captured graph holds its batch (`Framework.decode_rows`).
        self.launch = {phase: self.fw.kernel_s(self.overhead, phase) for phase in ("prefill", "decode")}
        self.launch["eager"] = self.fw.decode_kernel_s(self.overhead, False)
        # host dispatch per kernel where the pass is launched eagerly (Framework.dispatch_kernel_s)
        self.dispatch = {
            "prefill": self.fw.dispatch_kernel_s("prefill"),
            "decode": self.fw.dispatch_kernel_s("decode", self.fw.decode_graphs),
            "eager": self.fw.dispatch_kernel_s("decode", False),
        }
        self._dec_scale: dict = {}  # decoders in the kernel -> per-slot memory-time factor
        # decoders in the kernel -> [(slot, (x, y))] of measured decode kernels (a NodeKV's nodes),
        # whose per-sequence time depends on the decoders otherwise than by a factor: read at each
        # sequence's kernel length (`_dec_kernel_len`) by np.interp
        self._dec_mtime: dict = {}
        self._dec_kernel_len: dict = {}  # slot -> kernel length per cached length (NodeKV slots)
        self._dense: dict = {}
        self._experts: dict = {}  # (phase, rows, launch) -> the routed experts' part (`experts`)
        self._moe = steps.model.has_moe
        self._padded: dict = {}  # decoders -> (rows, launch key) of a padded graph (`_rows`)
        self._pairs: dict = {}
        self._dec = np.zeros((0, 0, 5))  # (cached length, slot, term)
        self._dec_meta: list = []
        self._pre_meta: list = []
        self._dec_once = self._pre_once = np.zeros(0, bool)
        self._calls = {"decode": self._record("decode"), "prefill": self._record("prefill")}
        self._prompt_key = {phase: self._reads_prompt(phase) for phase in ("decode", "prefill")}
        self.exact = True
        self.calls_fallback = 0
        if verify:
            self.exact = self._verify()

    # -- token-parallel part -------------------------------------------------------------------
    def _shape(self, phase, rows, batch, prompt) -> Shape:
        return Shape(
            phase=phase,
            rows=float(rows) / self.cp,
            passes=1.0,
            batch=float(batch),
            hidden=self.steps.model.hidden_size,
            prompt=float(prompt),
        )

    def _forward(self, phase, rows, batch, prompt, launch=None):
        calls: list = []

        def core(ctx, m, heads, elems, count):
            calls.append((ctx, m, heads, elems, count))
            return [], []

        s = self.steps
        ops = forward_ops(s._inputs(self._shape(phase, rows, batch, prompt)), s.model, s.layout, core)
        # (the cores' own eager dispatch adds in `_core_time`)
        return self.fw.cost_pass(ops, self.launch[launch or phase], self.dispatch[launch or phase]), calls

    def _record(self, phase) -> list:
        return self._forward(phase, 8, 2, 4096)[1]

    def _reads_prompt(self, phase) -> bool:
        """Whether the token-parallel ops of `phase` change with the pass's longest context (a
        method's once-per-prefill work does): then it is part of the memo key."""
        a, _ = self._forward(phase, 64, 2, 1000)
        b, _ = self._forward(phase, 64, 2, 70000)
        return any(
            not np.allclose([x.time_s, x.flops, x.bytes], [y.time_s, y.flops, y.bytes], rtol=0, atol=0)
            for x, y in zip(a, b)
        )

    def dense(self, phase, rows, batch, prompt, launch=None) -> np.ndarray:
        """[compute, comm, host time, FLOPs, bytes, eager dispatch] of the token-parallel ops of a pass (`prompt`,
        the longest context, only matters where `_reads_prompt`; None stands for any; `launch`:
        a key of `self.launch`, None for the phase's own)."""
        key = (phase, rows, batch, prompt if self._prompt_key[phase] else None, launch)
        got = self._dense.get(key)
        if got is None:
            costs, _ = self._forward(phase, rows, batch, 0 if prompt is None else prompt, launch)
            got = self._dense[key] = _summed_costs(costs).tolist()  # floats: summed per step
            if self._moe:  # the same pass's routed experts, as `experts` prices them (no batch in them)
                self._experts.setdefault((phase, rows, launch), _summed_costs(costs, EXPERT_OPS))
        return got

    # -- attention core --------------------------------------------------------------------------
    def _core_ops(self, phase, new, cached, kernel_batch=1.0) -> list:
        """Per-sequence attention-core ops of `phase` for arrays new/cached, as StepModel builds them
        (decode: `kernel_batch` decoders in the kernel)."""
        out = []
        for ctx, m, heads, elems, count in self._calls[phase]:
            if phase == "prefill":
                shape = replace(
                    ctx.shape,
                    phase="prefill",
                    rows=new / self.cp,
                    batch=1.0,
                    prompt=cached + new,
                    cached=cached,
                )
            else:
                shape = replace(
                    ctx.shape,
                    phase="decode",
                    rows=1.0 / self.cp,
                    batch=1.0,
                    prompt=cached,
                    kernel_batch=float(kernel_batch),
                )
            a, t = attention_core_ops(replace(ctx, shape=shape), m, heads, elems, count)
            out += a + t
        return out

    @staticmethod
    def _meta(ops) -> list:
        return [(float(op.count), float(op.kernels), op.stream, float(op.latency_s)) for op in ops]

    def dec_scale(self, nd: int) -> np.ndarray:
        """Per decode slot: memory time with `nd` decoders in the kernel over that with one."""
        got = self._dec_scale.get(nd)
        if got is None:
            one = self._core_ops("decode", None, np.array([1.0]), 1.0)
            many = self._core_ops("decode", None, np.array([1.0]), float(nd))
            rates = [
                (
                    float(np.ravel(np.asarray(a.memory_rate, float))[0]),
                    float(np.ravel(np.asarray(b.memory_rate, float))[0]),
                )
                for a, b in zip(one, many)
            ]
            # an op with no memory rate (inf) does not stream: factor 1; a measured kernel's memory
            # time is taken per step from its own nodes (`_measured`): factor 1
            got = np.array(
                [
                    r1 / rn if np.isfinite(rn) and rn > 0 and b.memory_time is None else 1.0
                    for (r1, rn), b in zip(rates, many)
                ]
            )
            # (a measured kernel time that is no NodeKV -- hardware rows mixed in one sweep -- never
            # reaches a serving step; the construction's verification would catch it)
            self._dec_mtime[nd] = [
                (i, extended_nodes(b.memory_time))
                for i, b in enumerate(many)
                if isinstance(b.memory_time, NodeKV)
            ]
            self._dec_scale[nd] = got
        return got

    def _measured(self, slot: int, nodes, cached) -> np.ndarray:
        """Per-sequence times of a measured decode kernel at cached lengths: its nodes (`_dec_mtime`)
        read at each sequence's kernel length."""
        return np.interp(self._dec_kernel_len[slot][cached], *nodes)

    @staticmethod
    def _once(ops, L) -> np.ndarray:
        """Ops whose FLOPs, bytes and fixed time do not vary per sequence: `step._summed` broadcasts
        them to a scalar and counts them once per step, not once per sequence."""
        return np.array(
            [all(np.ndim(value_at(q, L)) == 0 for q in (op.flops, op.bytes, op.fixed_s)) for op in ops],
            bool,
        )

    def _grow_decode(self, upto: int) -> None:
        """Tabulate decode terms for cached lengths 0 .. at least `upto`."""
        have = self._dec.shape[0]
        size = max(TABLE_CHUNK, int(np.ceil((upto + 1) / TABLE_CHUNK)) * TABLE_CHUNK, 2 * have)
        cached = np.arange(size, dtype=float)
        ops = self._core_ops("decode", None, cached)
        self._dec_meta = self._meta(ops)
        self._dec_once = self._once(ops, cached + 1.0)
        self._dec_kernel_len = {
            i: np.broadcast_to(op.memory_time.scale * op.memory_time.tokens.at(cached + 1.0), cached.shape)
            for i, op in enumerate(ops)
            if isinstance(op.memory_time, NodeKV)
        }
        table = (
            np.stack([_per_sequence(op, size, cached + 1.0) for op in ops]) if ops else np.zeros((0, 5, size))
        )
        self._dec = np.ascontiguousarray(table.transpose(2, 0, 1))  # rows gathered per step

    def _prefill_terms(self, new, cached, until=None) -> np.ndarray:
        """(slots, 5) summed terms of the prefill chunks (new[i], cached[i]). On a miss, the pairs a
        scheduler asks next are built in the same call: the chunk sizes around it (the budget left
        beside a few more or fewer decoders) and, given each prefill's end `until`, the chunk that
        would complete it."""
        keys = list(zip(new, cached))
        pairs = self._pairs
        try:
            found = [pairs[k] for k in keys]
        except KeyError:
            found = None
        if found is not None:
            if len(found) == 1:
                return found[0]
            total = found[0] + found[1]
            for f in found[2:]:
                total = total + f
            if self._pre_once.any():
                total[self._pre_once] = found[0][self._pre_once]
            return total
        missing = [k for k in dict.fromkeys(keys) if k not in self._pairs]
        if missing:
            extra = []
            ends = list(until) if until is not None else [None] * len(keys)
            for (n, c), end in zip(keys, ends):
                if (n, c) not in missing:
                    continue
                for d in range(-PREFETCH, PREFETCH + 1):
                    m = n + d
                    if m >= 1 and (m > 1 or c == 0):
                        extra.append((m, c))
                        if end is not None and end - c - m >= 1:
                            extra.append((end - c - m, c + m))
            missing = [
                k for k in dict.fromkeys(missing + extra) if k not in self._pairs and (k[0] > 1 or k[1] == 0)
            ]
            mn = np.array([k[0] for k in missing], float)
            mc = np.array([k[1] for k in missing], float)
            ops = self._core_ops("prefill", mn, mc)
            self._pre_meta = self._meta(ops)
            self._pre_once = self._once(ops, None)
            terms = (
                np.stack([_per_sequence(op, len(missing), None) for op in ops])
                if ops
                else np.zeros((0, 5, len(missing)))
            )
            for j, k in enumerate(missing):
                self._pairs[k] = terms[:, :, j]
        total = pairs[keys[0]]
        for k in keys[1:]:
            total = total + pairs[k]
        if len(keys) > 1 and self._pre_once.any():
            total[self._pre_once] = pairs[keys[0]][self._pre_once]
        return total

    def _rows(self, nd: int, npre: int, pre_new, peers=None) -> tuple:
        """(token rows of the token-parallel ops, launch key) of a step: a pure decode step's rows
        padded to the captured graph that holds it, or launched eagerly (key 'eager') where none
        does (`Framework.decode_rows`); a step with prompt chunks, its tokens. `peers`: (the most
        decoders of a lockstep group's ranks, whether one of them has a prompt chunk): the ranks
        replay their graphs only when none has, all padded to the graph of the largest batch (vLLM's
        and SGLang's data-parallel padding, TensorRT-LLM's under attention DP)."""
        if npre:
            return nd + sum(pre_new), None
        if peers is not None:
            most, prefilling = peers
            if prefilling:
                return nd, "eager" if self.fw.decode_graphs else None
            nd = max(nd, most)
        if self.fw.graph_sizes is None:  # every batch size has its graph (or none has): as it is
            return nd, None
        got = self._padded.get(nd)
        if got is None:
            rows, graphed = self.fw.decode_rows(nd)
            got = self._padded[nd] = (int(rows), None if graphed or not self.fw.decode_graphs else "eager")
        return got

    def _core_time(self, terms: np.ndarray, meta: list, acc: list, launch: float, scale=None, dispatch=0.0):
        """Add the summed per-sequence terms of each core op, costed as `cost_op` costs the op
        `step._summed` builds from them: count x (max(compute, memory) + launches + fixed + latency);
        `scale`: per-slot memory-time factors (decode: the decoders in the kernel); `dispatch`: the
        host's time per eagerly launched kernel (`Framework.dispatch_op`)."""
        scales = [1.0] * len(meta) if scale is None else scale.tolist()
        for (count, kernels, stream, latency), (tc, tm, fix, fl, by), sc in zip(meta, terms.tolist(), scales):
            tm = tm * sc
            acc[_STREAM[stream]] += count * ((tc if tc > tm else tm) + kernels * launch + fix + latency)
            acc[3] += count * fl
            acc[4] += count * by
            acc[5] += count * kernels * dispatch

    def _combine(self, acc, sequences, longer=max):
        """Stream times to the step time, as `PhaseTotals.of` (`longer`: np.maximum for arrays of
        steps): with pp > 1 the CPU iteration serves the pp micro-batches in flight and the relay of
        their sampled tokens adds."""
        compute, comm, host = acc[0], acc[1], acc[2]
        t = longer(compute, comm) if self.overlap == "overlap" else compute + comm
        t = longer(t, acc[5])  # eager dispatch runs beside the kernels it launches
        t = longer(t, host) if self.host_overlap else t + host
        cpu = self.fw.cpu_s(sequences * self.pp)
        t = longer(t, cpu) if self.fw.overlap else t + cpu
        return t + self.fw.relay_s(sequences, self.pp)

    # -- public ----------------------------------------------------------------------------------
    def cost(self, new, cached, until=None) -> tuple:
        """(time_s, FLOPs, bytes) of one forward pass; new/cached integer arrays (StepModel's rule:
        a sequence decodes when it brings one token on top of a non-empty cache). `until`, optional:
        each sequence's prefill end, a hint for what to build ahead (see `_prefill_terms`)."""
        new = np.asarray(new, dtype=np.int64)
        cached = np.asarray(cached, dtype=np.int64)
        if not self.exact:
            self.calls_fallback += 1
            c = self.steps.cost(new, cached)
            return c.time_s, c.flops, c.bytes
        decoding = (new == 1) & (cached > 0)
        pre = ~decoding
        hint = None if until is None else np.asarray(until)[pre].tolist()
        return self.cost_parts(cached[decoding], new[pre].tolist(), cached[pre].tolist(), hint)

    def cost_parts(self, dec_cached, pre_new, pre_cached, pre_until=None) -> tuple:
        """`cost` with the batch already split by StepModel's rule: decoding sequences' cached
        lengths (an integer array), and the prefill chunks' new and cached tokens (lists of ints;
        none with new == 1 on a non-empty cache) with, optionally, each one's prefill end."""
        pre_new, pre_cached = list(pre_new), list(pre_cached)
        nd, npre = dec_cached.size, len(pre_new)
        if not self.exact:
            return self.cost(
                np.concatenate([np.ones(nd, np.int64), np.array(pre_new, np.int64)]),
                np.concatenate([dec_cached, np.array(pre_cached, np.int64)]),
            )
        acc, _ = self.parts(dec_cached, pre_new, pre_cached, pre_until)
        return self._combine(acc, nd + npre), acc[3], acc[4]

    def parts(self, dec_cached, pre_new, pre_cached, pre_until=None, peers=None) -> tuple:
        """`cost_parts` before the streams combine (exact steps only): the step's [compute, comm,
        host time, FLOPs, bytes] and (phase, token rows, launch key) of its token-parallel ops;
        `peers`: a lockstep group's (most decoders, any prompt chunk), see `_rows`."""
        pre_new, pre_cached = list(pre_new), list(pre_cached)
        nd, npre = dec_cached.size, len(pre_new)
        phase = "prefill" if npre else "decode"
        prompt = None
        if self._prompt_key[phase]:
            prompt = max(
                max((c + n for n, c in zip(pre_new, pre_cached)), default=0),
                int(dec_cached.max()) + 1 if nd else 0,
            )
        rows, mode = self._rows(nd, npre, pre_new, peers)
        key = (phase, rows, nd + npre, prompt, mode)
        got = self._dense.get(key)
        acc = list(got if got is not None else self.dense(*key))
        launch, dispatch = self.launch[mode or phase], self.dispatch[mode or phase]
        if npre:
            terms = self._prefill_terms(pre_new, pre_cached, pre_until)
            self._core_time(terms, self._pre_meta, acc, launch, None, dispatch)
        if nd:
            top = int(dec_cached.max())
            if top >= self._dec.shape[0]:
                self._grow_decode(top)
            terms = self._dec[dec_cached].sum(axis=0)
            if self._dec_once.any():
                terms[self._dec_once] = self._dec[0][self._dec_once]
            scale = self.dec_scale(nd)  # (also tabulates _dec_mtime[nd])
            for slot, mt in self._dec_mtime[nd]:
                terms[slot, _TM] = float(np.sum(self._measured(slot, mt, dec_cached)))
            self._core_time(terms, self._dec_meta, acc, launch, scale, dispatch)
        return acc, (phase, rows, mode)

    def decode_run(self, cached, k: int) -> tuple:
        """Times, FLOPs and bytes of k consecutive pure-decode steps of the sequences with cached
        lengths `cached` (each step adds one token to every sequence): arrays of length k."""
        cached = np.asarray(cached, dtype=np.int64)
        if not self.exact:
            out = [self.cost(np.ones_like(cached), cached + j) for j in range(k)]
            return tuple(np.array(col) for col in zip(*out))
        acc, _ = self.run_parts(cached, k)
        return self._combine(acc, cached.size, np.maximum), acc[3], acc[4]

    def run_parts(self, cached, k: int, peers=None) -> tuple:
        """`decode_run` before the streams combine (exact steps only): (5, k) stream sums and
        ("decode", token rows, launch key) of its token-parallel ops; `peers` as for `parts`."""
        top = int(cached.max()) + k
        if top >= self._dec.shape[0]:
            self._grow_decode(top)
        n = cached.size
        rows, mode = self._rows(n, 0, (), peers)
        base = np.array(self.dense("decode", rows, n, top if self._prompt_key["decode"] else None, mode))
        steps = np.arange(k)
        terms = self._dec[cached[:, None] + steps[None, :]].sum(axis=0).transpose(1, 2, 0)  # (slots, 5, k)
        if self._dec_once.any():
            terms[self._dec_once] = self._dec[0][self._dec_once][:, :, None]
        scale = self.dec_scale(n)  # (also tabulates the measured kernels' nodes, _dec_mtime[n])
        for slot, mt in self._dec_mtime[n]:
            terms[slot, _TM] = self._measured(slot, mt, cached[:, None] + steps[None, :]).sum(axis=0)
        acc = np.zeros((6, k)) + base[:, None]
        launch, dispatch = self.launch[mode or "decode"], self.dispatch[mode or "decode"]
        for (count, kernels, stream, latency), t, sc in zip(self._dec_meta, terms, scale):
            acc[_STREAM[stream]] += count * (
                np.maximum(t[_TC], t[_TM] * sc) + kernels * launch + t[_FIX] + latency
            )
            acc[3] += count * t[_FL]
            acc[4] += count * t[_BY]
            acc[5] += count * kernels * dispatch
        return acc, ("decode", rows, mode)

    def experts(self, phase: str, rows, launch=None) -> np.ndarray:
        """[compute, comm, host time, FLOPs, bytes, eager dispatch] of the routed experts' ops (`layers.expert_ops`:
        EXPERT_OPS) in a pass of `rows` token rows: the work that ranks sharing their experts do
        together (`lockstep`)."""
        key = (phase, rows, launch)
        got = self._experts.get(key)
        if got is None:
            got = self._experts[key] = _summed_costs(self._forward(phase, rows, 1, 0, launch)[0], EXPERT_OPS)
        return got

    def _verify(self) -> bool:
        """Whether the parts reproduce StepModel.cost on probe batches (else: fall back)."""
        rng = np.random.default_rng(0)
        probes = [
            (np.array([1]), np.array([4096])),
            (np.array([512]), np.array([0])),
            (
                np.concatenate([[300, 17], np.ones(6, int)]),
                np.concatenate([[0, 900], rng.integers(1, 9000, 6)]),
            ),
        ]
        for new, cached in probes:
            want = self.steps.cost(new, cached)
            got = self.cost(new, cached)
            if not np.isclose(got[0], want.time_s, rtol=VERIFY_REL, atol=0):
                return False
        return True
