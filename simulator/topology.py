"""Where each parallel group sits, and which links its collectives cross.

GPUs are numbered with tensor parallelism innermost, then context, expert (within tp x dp), pipeline
and data parallelism outermost — the usual placement, which keeps the chattiest groups on the
fastest links. A group of n GPUs with stride s spans n*s consecutive GPUs: inside one scale-up
(NVLink / xGMI) domain its collectives use that link; otherwise it has n_intra = domain // s members
per domain and n_inter = n / n_intra domains, and crosses the inter-node fabric (one NIC per GPU).
PCIe cards without NVLink talk over the host link inside a node. A profile's measured collective
tables (comm.MeasuredTables) belong to the scale-up link: they price the collectives inside a domain
and the in-domain parts of those that cross nodes; the fabric's part keeps the alpha-beta model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roofline.simulator.comm import (
    LINK_EFFICIENCY,
    P2P_ALLREDUCE,
    RING_STEP_LATENCY_S,
    Link,
    allgather_time,
    alltoall_time,
    hierarchical_allreduce_time,
    measured_tables,
    p2p_time,
)


@dataclass(frozen=True)
class Fabric:
    name: str
    bandwidth: float  # bytes/s per GPU per direction
    step_latency_s: float
    efficiency: float
    sendrecv_latency_s: float | None = None  # measured send/recv latency across the fabric
    alltoall_latency_s: float | None = None  # measured all-to-all latency across the fabric


@dataclass
class Group:
    """One parallel group's collectives (n GPUs; arrays over hardware rows where domains differ)."""

    n: int
    n_intra: object
    n_inter: object
    intra: Link
    inter: Link

    @property
    def crosses_nodes(self):
        return np.asarray(self.n_inter) > 1

    def _slowest(self):
        """The link a ring or all-to-all step is paced by: the fabric once the group spans domains."""
        cross = self.crosses_nodes
        return Link(
            "slowest",
            np.where(cross, self.inter.bandwidth, self.intra.bandwidth),
            np.where(cross, self.inter.step_latency_s, self.intra.step_latency_s),
            np.where(cross, self.inter.efficiency, self.intra.efficiency),
        )

    def allreduce(self, bytes_):
        return hierarchical_allreduce_time(bytes_, self.n_intra, self.n_inter, self.intra, self.inter)

    def allgather(self, bytes_):
        t = allgather_time(bytes_, self.n, self._slowest())
        if self.intra.tables is None:
            return t
        return np.where(self.crosses_nodes, t, allgather_time(bytes_, self.n, self.intra))

    def alltoall(self, bytes_):
        """Across domains, the share for peers in the same domain moves over the scale-up link while
        the rest crosses the fabric, in parallel; latency steps are paced by the slowest link."""
        n = np.asarray(self.n, dtype=float)  # (an array where the degree is a sweep axis)
        within = alltoall_time(bytes_ * self.n_intra / n, self.n_intra, self.intra)
        across = self.inter.exchange_latency(n) + bytes_ * (n - self.n_intra) / n / self.inter.rate
        return np.where(
            self.crosses_nodes, np.maximum(within, across), alltoall_time(bytes_, self.n, self.intra)
        )

    def p2p(self, bytes_):
        t = np.where(self.crosses_nodes, p2p_time(bytes_, self.inter), p2p_time(bytes_, self.intra))
        return np.where(self.n > 1, t, 0.0)


def _measured(links: tuple, which: int, row):
    """Per point: measured (alpha, beta) of a link where the row's profile has one, else nan."""
    alpha = np.array([lk[which].alpha_s if lk and lk[which] else np.nan for lk in links] or [np.nan])
    beta = np.array([lk[which].beta_Bps if lk and lk[which] else np.nan for lk in links] or [np.nan])
    return alpha[row], beta[row]


def nvlink(hw, links: tuple = (), custom_allreduce: bool = True) -> Link:
    """The scale-up link of each hardware row (PCIe through the host where there is none); a
    profile's measured fit replaces the datasheet bandwidth, efficiency and step latency. NVLS
    only where the switch has NVLink SHARP (`Hardware.nvlink_sharp`); the engines' peer-to-peer
    one-shot/two-shot all-reduce on any NVLink/xGMI domain unless `custom_allreduce` is off. The
    profile's collective tables (calibration.LinkFit.tables) ride on the link (comm.MeasuredTables)."""
    bw = hw.col("scale_up_bandwidth")
    has = bw > 0
    alpha, beta = _measured(links, 0, hw.row) if links else (np.nan, np.nan)
    measured = np.isfinite(beta)
    kinds = [getattr(h, "scale_up_kind", "") for h in hw.hw_list]
    p2p = np.array([P2P_ALLREDUCE.get(k, (RING_STEP_LATENCY_S, LINK_EFFICIENCY)) for k in kinds])[hw.row]
    return Link(
        "scale-up",
        np.where(measured, beta, np.where(has, bw, hw.col("host_link_bandwidth"))),
        np.where(np.isnan(alpha), RING_STEP_LATENCY_S, alpha),
        np.where(measured, 1.0, np.where(has, LINK_EFFICIENCY, 0.8)),
        nvls=hw.flag("nvlink_sharp") & ~measured,  # a measured fit already includes NVLS
        p2p=has & custom_allreduce,
        p2p_latency_s=p2p[..., 0],
        p2p_efficiency=p2p[..., 1],
        tables=measured_tables([lk[0] if lk else None for lk in links], hw.row) if links else None,
    )


def groups(layout, hw, fabric: Fabric, links: tuple = ()) -> dict:
    """Group for tp, cp, ep, pp, dp (see the module docstring for placement). `links`: per hardware
    row, measured (intra, inter) link fits from calibration profiles."""
    domain = np.maximum(hw.col("scale_up_domain"), 1.0)
    intra = nvlink(hw, links, layout.custom_allreduce)
    alpha, beta = _measured(links, 1, hw.row) if links else (np.nan, np.nan)
    measured = np.isfinite(beta)
    inter = Link(
        fabric.name,
        np.where(measured, beta, np.full(np.shape(domain), fabric.bandwidth)),
        np.where(np.isnan(alpha), fabric.step_latency_s, alpha),
        np.where(measured, 1.0, fabric.efficiency),
        tree=True,  # NCCL's double binary tree across nodes
        sendrecv_latency_s=fabric.sendrecv_latency_s,
        alltoall_latency_s=fabric.alltoall_latency_s,
    )
    out = {}
    stride = 1
    for name, n in (("tp", layout.tp), ("cp", layout.cp), ("pp", layout.pp), ("dp", layout.dp)):
        if np.ndim(n) == 0 and n == 1:  # a one-GPU group: nothing to place (and nothing to pay)
            out[name] = Group(1, 1.0, 1.0, intra, inter)
            continue
        span = n * stride
        n_intra = np.where(span <= domain, n, np.maximum(np.floor(domain / stride), 1.0))
        n_intra = np.minimum(n_intra, n)
        out[name] = Group(n, n_intra, np.ceil(n / n_intra), intra, inter)
        stride = stride * n  # (a new array: pp and dp may be arrays over points)
    # Expert parallelism spans the innermost ep GPUs of the tp x dp ranks (ep <= tp: inside tp).
    ep = layout.ep
    n_intra = np.minimum(np.where(ep <= domain, ep, domain), ep)
    out["ep"] = Group(ep, n_intra, np.ceil(ep / n_intra), intra, inter)
    return out


def host_fabric(hw) -> Fabric:
    """Without a named fabric, groups that leave the NVLink domain use the host link (PCIe)."""
    return Fabric("host-link", hw.col("host_link_bandwidth"), 10e-6, 0.8)
