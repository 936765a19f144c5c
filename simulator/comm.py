"""Communication cost: alpha-beta models of collectives over one link class, and hierarchical
combinations across an NVLink domain and an inter-node fabric.

Bus-bandwidth factors follow nccl-tests' definitions (PERFORMANCE.md): for n ranks and a buffer of
S bytes, a ring all-reduce moves 2 (n-1)/n S over each rank's link in 2 (n-1) latency steps;
all-gather, reduce-scatter and all-to-all move (n-1)/n S in n-1 steps (S = the full gathered /
scattered buffer per rank); send/recv moves S in one step. A tree all-reduce (NCCL's double binary
tree) keeps the ring's bandwidth term with 2 log2(n) latency steps; NVLS (NVLink SHARP, in-switch
reduction on NVSwitch systems) halves the bytes each GPU sends: S up and S down, with the ring's
latency (the Azure figures below are NVLS runs: 1 MB takes ~40 us on 8 H100s). NCCL uses trees
across nodes only, so `auto` considers the tree on fabric links alone. NVLS needs third-generation
NVSwitch with NVLink SHARP: Hopper and later NVSwitch systems only (NVIDIA H100 whitepaper, "NVLink
SHARP"; A100's NVSwitch has no in-switch reduction).

Inside one fully connected NVLink (or xGMI) domain, serving engines reduce small messages with their
own peer-to-peer kernels rather than NCCL (vLLM's custom all-reduce, TensorRT-LLM's one-shot /
two-shot all-reduce plugins, SGLang's reuse of vLLM's): one-shot reads all n-1 peers' buffers in one
synchronisation step, (n-1) S per GPU; two-shot is a reduce-scatter then an all-gather over the same
peer links, 2 (n-1)/n S in two steps. Each shot costs a measured synchronisation latency and moves
bytes at a measured share of the link (`P2P_ALLREDUCE`, per NVLink generation). `auto` takes the
fastest algorithm the link offers, as the engines' size thresholds do.

NVLink defaults are fitted to the Azure ND H100 v5 NCCL all-reduce results (8 GPUs): 1 MB at
43.70 GB/s and 256 MB at 423.38 GB/s bus bandwidth give ~2.5 us per ring step and ~95% of the
450 GB/s per-direction NVLink bandwidth.

Measured tables (a calibration profile's `collectives.<link>.ops.<op>.table`, e.g. AIConfigurator's
nccl_perf and custom_allreduce_perf) replace these formulas where they apply: a link's `tables`
(`MeasuredTables`) price an op of S bytes on n GPUs from the table of that op and n, interpolated
linearly in bytes, an alpha-beta line per segment (`calibration.CollectiveTable.at`); at a GPU count
without a table the formula stands. For the all-reduce, the framework's own kernel's table
(`custom_all_reduce`) is used where the link offers the peer all-reduce (`p2p`) and it beats
NCCL's (the engines hand large messages to NCCL), NCCL's table
replaces the ring/NVLS part otherwise (and where only NCCL's is measured, the peer formula still
competes with it, as without tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv")


def _check(collective: str, n: int) -> None:
    if collective not in COLLECTIVES:
        raise ValueError(f"unknown collective {collective!r}; valid: {', '.join(COLLECTIVES)}")
    if n < 2:
        raise ValueError(f"a collective needs at least 2 ranks, got {n}")


def busbw_factor(collective: str, n: int) -> float:
    """nccl-tests' bus-bandwidth factor: busbw = algbw * factor (doc/PERFORMANCE.md): the share of
    the buffer each rank's link carries in a ring."""
    _check(collective, n)
    if collective == "all_reduce":
        return 2.0 * (n - 1) / n
    if collective == "send_recv":
        return 1.0
    return (n - 1) / n


def latency_steps(collective: str, n: int) -> int:
    """Latency-bound steps of a ring: 2(n-1) for all-reduce, n-1 for the others, 1 for send/recv."""
    _check(collective, n)
    if collective == "all_reduce":
        return 2 * (n - 1)
    if collective == "send_recv":
        return 1
    return n - 1


RING_STEP_LATENCY_S = 2.5e-6
LINK_EFFICIENCY = 0.95

# The serving engines' peer-to-peer all-reduce (one-shot / two-shot), measured: AIConfigurator's
# vLLM custom all-reduce tables (aiconfigurator-core 0.12.0, CUDA-graph backend, bf16, 2/4/8 GPUs,
# messages up to vLLM's 8 MiB limit), fitted per NVLink generation as min(one-shot, two-shot) with
# one synchronisation latency per shot and a share of the per-direction NVLink bandwidth:
# A100 (nvlink3) 5.45 us, 0.55; H100 and H200 (nvlink4) 4.52 and 4.56 us, 0.64 and 0.68; B200
# (nvlink5) 7.20 us, 0.31. Median |error| over the 48 measured points of each GPU: 3-7% (the
# NCCL-derived 2.5 us / 0.95 gave 42-64%). Generations without a table keep the NCCL-derived values.
P2P_ALLREDUCE = {"nvlink3": (5.45e-6, 0.55), "nvlink4": (4.54e-6, 0.66), "nvlink5": (7.20e-6, 0.31)}


@dataclass(frozen=True)
class Link:
    """One class of link between the GPUs of a group: per-GPU per-direction bandwidth (bytes/s),
    per-step latency (s), achievable share of bandwidth, and whether NVLS in-switch reduction exists."""

    name: str
    bandwidth: object
    step_latency_s: float = RING_STEP_LATENCY_S
    efficiency: float = LINK_EFFICIENCY
    nvls: object = False
    tree: bool = False  # NCCL's double binary tree is used across nodes
    p2p: object = False  # a fully connected peer-to-peer domain: one-shot / two-shot all-reduce
    p2p_latency_s: object = RING_STEP_LATENCY_S  # per shot of the peer all-reduce (P2P_ALLREDUCE)
    p2p_efficiency: object = LINK_EFFICIENCY  # its share of the bandwidth
    tables: object = None  # MeasuredTables: measured collectives on this link, or None
    sendrecv_latency_s: object = None  # a point-to-point send/recv's latency; None: one step's
    alltoall_latency_s: object = None  # an all-to-all's latency (every peer at once); None: n - 1 steps

    def sendrecv_latency(self):
        """Latency of one send/recv pair (a pipeline hand-off, a ring step of ring attention)."""
        return self.step_latency_s if self.sendrecv_latency_s is None else self.sendrecv_latency_s

    def exchange_latency(self, n):
        """Latency of an all-to-all among n GPUs over this link: n - 1 steps, or where measured, one
        exchange (NCCL posts every peer's send and receive together)."""
        steps = (np.asarray(n, dtype=float) - 1.0) * self.step_latency_s
        return (
            steps
            if self.alltoall_latency_s is None
            else np.where(np.asarray(n) > 1, self.alltoall_latency_s, 0.0)
        )

    @property
    def rate(self):
        return self.bandwidth * self.efficiency

    @property
    def p2p_rate(self):
        return self.bandwidth * self.p2p_efficiency


@dataclass(frozen=True)
class MeasuredTables:
    """Measured collective tables of a link: per hardware row {(op, GPU count): CollectiveTable}
    (calibration.py), and each point's hardware row."""

    per_row: tuple
    row: object

    def price(self, op: str, bytes_, n, fallback):
        """(time, measured): the table's time where the point's row has a table of `op` for its GPU
        count n, `fallback` elsewhere; `measured` marks the points priced from a table."""
        b, count, row, out = np.broadcast_arrays(
            np.asarray(bytes_, dtype=float), np.asarray(n, dtype=float), np.asarray(self.row), fallback
        )
        out = np.array(out, dtype=float)
        hit = np.zeros(out.shape, dtype=bool)
        for r, tables in enumerate(self.per_row):
            for (kind, gpus), table in tables.items():
                if kind != op:
                    continue
                sel = (row == r) & (count == gpus)
                if sel.any():
                    out[sel] = table.at(b[sel])
                    hit |= sel
        return out, hit


def measured_tables(fits, row):
    """MeasuredTables from each hardware row's LinkFit (or None), or None when none has tables."""
    per_row = tuple({(t.op, t.gpus): t for t in getattr(fit, "tables", ())} for fit in fits)
    return MeasuredTables(per_row, row) if any(per_row) else None


def _table_or(link: Link, op: str, bytes_, n, formula):
    """A link's measured time of `op` where it has a table for the GPU count, else the formula."""
    if link.tables is None:
        return formula
    return link.tables.price(op, bytes_, n, formula)[0]


def _only_if_group(n, t):
    """t where the group has more than one GPU, else 0 (n may be an array over sweep points)."""
    return np.where(np.asarray(n) > 1, t, 0.0)


def ring_allreduce_time(bytes_, n: int, link_bw, step_latency_s=RING_STEP_LATENCY_S):
    """Ring all-reduce of `bytes_` across n GPUs: 2(n-1) alpha + 2(n-1)/n * bytes / (bw * eff)."""
    if n <= 1:
        return np.zeros_like(np.asarray(bytes_, dtype=float))
    return 2 * (n - 1) * step_latency_s + 2.0 * (n - 1) / n * bytes_ / (link_bw * LINK_EFFICIENCY)


def allreduce_time(bytes_, n: int, link: Link, algorithm: str = "auto"):
    """All-reduce of a `bytes_` buffer on each of n GPUs: ring, tree, NVLS, or the fastest (auto)."""
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    ring = 2 * (n - 1) * link.step_latency_s + 2.0 * (n - 1) / n * bytes_ / link.rate
    tree = 2 * np.ceil(np.log2(n)) * link.step_latency_s + 2.0 * (n - 1) / n * bytes_ / link.rate
    nvls = 2 * (n - 1) * link.step_latency_s + bytes_ / link.rate
    oneshot = link.p2p_latency_s + (n - 1) * bytes_ / link.p2p_rate
    twoshot = 2 * link.p2p_latency_s + 2.0 * (n - 1) / n * bytes_ / link.p2p_rate
    chosen = {"ring": ring, "tree": tree, "nvls": nvls, "oneshot": oneshot, "twoshot": twoshot}.get(algorithm)
    if chosen is None and link.tables is not None:
        return _only_if_group(n, _measured_allreduce(bytes_, n, link, ring, tree, nvls, oneshot, twoshot))
    if chosen is None:
        chosen = np.minimum(ring, tree) if link.tree else ring
        chosen = np.where(link.nvls, np.minimum(chosen, nvls), chosen)
        chosen = np.where(link.p2p, np.minimum(chosen, np.minimum(oneshot, twoshot)), chosen)
    return _only_if_group(n, chosen)


def _measured_allreduce(bytes_, n, link: Link, ring, tree, nvls, oneshot, twoshot):
    """`auto` on a link with tables: NCCL's table (else ring/tree/NVLS) and, where the link offers
    the peer all-reduce, the faster of it and the framework's table (else min(NCCL, one-shot,
    two-shot) as without). The engines hand large messages to NCCL: vLLM's custom all-reduce
    serves messages up to 8 MB only (`CustomAllreduce.max_size`), TensorRT-LLM's AUTO strategy
    picks NCCL above its one-shot/two-shot thresholds; TensorRT-LLM's own kernel, measured up to
    1 GB on B200, takes 0.72 ms for 256 MB on 4 GPUs where NCCL's NVLS takes 0.36 ms."""
    nccl = np.minimum(ring, tree) if link.tree else ring
    nccl = np.where(link.nvls, np.minimum(nccl, nvls), nccl)
    nccl, _ = link.tables.price("all_reduce", bytes_, n, nccl)
    peer = np.minimum(nccl, np.minimum(oneshot, twoshot))
    custom, measured = link.tables.price("custom_all_reduce", bytes_, n, peer)
    return np.where(link.p2p, np.where(measured, np.minimum(custom, nccl), peer), nccl)


def allgather_time(bytes_, n: int, link: Link):
    """All-gather producing `bytes_` on each GPU (each contributes bytes_/n): (n-1) steps."""
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    t = (n - 1) * link.step_latency_s + (n - 1) / n * bytes_ / link.rate
    return _only_if_group(n, _table_or(link, "all_gather", bytes_, n, t))


def reduce_scatter_time(bytes_, n: int, link: Link):
    """Reduce-scatter of a `bytes_` buffer on each GPU (each keeps bytes_/n): the mirror image of the
    all-gather, same steps and bytes, with its own measured table."""
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    t = (n - 1) * link.step_latency_s + (n - 1) / n * bytes_ / link.rate
    return _only_if_group(n, _table_or(link, "reduce_scatter", bytes_, n, t))


def alltoall_time(bytes_, n: int, link: Link):
    """All-to-all of `bytes_` per GPU ((n-1)/n of it leaves the GPU): (n-1) steps."""
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    t = (n - 1) * link.step_latency_s + (n - 1) / n * bytes_ / link.rate
    return _only_if_group(n, _table_or(link, "all_to_all", bytes_, n, t))


def send_recv_time(bytes_, link_bw, latency_s=RING_STEP_LATENCY_S):
    """Point-to-point transfer (pipeline-stage boundary, ring step): alpha + bytes / (bw * eff)."""
    return latency_s + bytes_ / (link_bw * LINK_EFFICIENCY)


def p2p_time(bytes_, link: Link):
    return link.sendrecv_latency() + bytes_ / link.rate


def hierarchical_allreduce_time(bytes_, n_intra: int, n_inter: int, intra: Link, inter: Link):
    """All-reduce across n_intra x n_inter GPUs: reduce-scatter inside each NVLink domain, all-reduce
    of the 1/n_intra shards across domains (one NIC per GPU, so the shards travel in parallel),
    all-gather inside the domain (NCCL's hierarchical / CollNet-style decomposition)."""
    n_intra = np.maximum(np.asarray(n_intra, dtype=float), 1.0)
    flat = allreduce_time(bytes_, n_intra, intra)
    hier = (
        reduce_scatter_time(bytes_, n_intra, intra)
        + allreduce_time(bytes_ / n_intra, n_inter, inter)
        + allgather_time(bytes_, n_intra, intra)
    )
    return np.where(np.asarray(n_inter) > 1, hier, flat)
