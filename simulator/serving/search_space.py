"""The candidate deployments of `roofline plan --serving`: aggregated and disaggregated serving layouts.

A `ServingLayout` is one deployment to simulate: the hardware, either one pool of `dp` identical
replicas of `tp × cp × pp` GPUs, their experts split over `ep` of the tp × dp GPUs (aggregated), or a
prefill pool of `prefill_replicas` replicas of `prefill_tp × prefill_cp` GPUs beside a decode pool
of `decode_replicas` replicas of `decode_tp` GPUs (disaggregated, `serving.disaggregation`), the
scheduler's `max_num_seqs` and a method stack's label.
`enumerate_serving_layouts` lists every such deployment within a GPU budget; running them is the
caller's (`roofline.serving_search`).

Assumptions: pipeline and expert parallelism only where asked (`pp_choices`, `ep_choices`;
aggregated candidates: a replica of pp stages keeps pp micro-batches in flight; experts over ep / tp
of the dp replicas, whose attention ranks then step in lockstep, `lockstep`; `EP_ALL` spans all
tp × dp GPUs; a disaggregated candidate's decode pool likewise over its replicas); replica counts (`dp`, prefill and decode replicas) take every whole number within the
budget, so a deployment can be sized to the traffic; tp and cp take the given choices, and a tp that
does not split the model's attention heads (`tp_ok`) is left out here rather than refused later.
"""

from __future__ import annotations

from dataclasses import dataclass

from roofline.simulator.layout import ep_splits

AGGREGATED, DISAGGREGATED = "aggregated", "disaggregated"
EP_ALL = "all"  # an ep choice: the experts over all tp x dp GPUs of an aggregated deployment
MAX_SERVING_LAYOUTS = 20_000  # each candidate is several serving simulations


class TooManyLayouts(ValueError):
    """The search space exceeds MAX_SERVING_LAYOUTS; the message says by how much it was cut off."""


@dataclass(frozen=True, order=True)
class ServingLayout:
    """One deployment. Fields that do not apply to its kind are 0 (e.g. `dp` of a disaggregated one)."""

    hardware: str
    kind: str  # AGGREGATED or DISAGGREGATED
    tp: int = 0
    cp: int = 0
    dp: int = 0
    ep: int = 1
    pp: int = 1
    prefill_replicas: int = 0
    prefill_tp: int = 0
    prefill_cp: int = 0
    decode_replicas: int = 0
    decode_tp: int = 0
    decode_ep: int = 1
    max_num_seqs: int = 0
    stack: str = "dense"

    @property
    def gpus(self) -> int:
        if self.kind == AGGREGATED:
            return self.tp * self.cp * self.pp * self.dp
        return self.prefill_gpus + self.decode_gpus

    @property
    def prefill_gpus(self) -> int:
        return self.prefill_replicas * self.prefill_tp * self.prefill_cp

    @property
    def decode_gpus(self) -> int:
        return self.decode_replicas * self.decode_tp

    @property
    def label(self) -> str:
        """`tp2 cp1 x dp3` (`tp1 cp1 pp2 x dp4 ep4` with pipeline and expert parallelism), or
        `P2x(tp1 cp1) : D3x(tp2)` (replicas x replica layout per pool; `D4x(tp1) ep4`: the decode
        pool's experts over its four ranks)."""
        if self.kind == AGGREGATED:
            stages = f" pp{self.pp}" if self.pp > 1 else ""
            experts = f" ep{self.ep}" if self.ep > 1 else ""
            return f"tp{self.tp} cp{self.cp}{stages} x dp{self.dp}{experts}"
        experts = f" ep{self.decode_ep}" if self.decode_ep > 1 else ""
        return (
            f"P{self.prefill_replicas}x(tp{self.prefill_tp} cp{self.prefill_cp}) : "
            f"D{self.decode_replicas}x(tp{self.decode_tp}){experts}"
        )

    def fields(self) -> dict:
        """The layout's own values, as the search's records list them."""
        if self.kind == AGGREGATED:
            shape = {"tp": self.tp, "cp": self.cp, "pp": self.pp, "dp": self.dp, "ep": self.ep}
        else:
            shape = {
                "prefill_replicas": self.prefill_replicas,
                "prefill_tp": self.prefill_tp,
                "prefill_cp": self.prefill_cp,
                "decode_replicas": self.decode_replicas,
                "decode_tp": self.decode_tp,
                "decode_ep": self.decode_ep,
            }
        return {"kind": self.kind, **shape, "max_num_seqs": self.max_num_seqs, "stack": self.stack}

    def overrides(self) -> list:
        """(field path, value) pairs that turn a serving scenario into this deployment."""
        out = [
            ("hardware", self.hardware),
            ("gpus", None),
            ("parallelism.pp", self.pp),
            ("parallelism.ep", self.ep),
        ]
        out.append(("serving.scheduler.max_num_seqs", self.max_num_seqs))
        if self.kind == AGGREGATED:
            out += [("parallelism.tp", self.tp), ("parallelism.cp", self.cp), ("parallelism.dp", self.dp)]
            out += [
                ("serving.disaggregation.prefill_gpus", None),
                ("serving.disaggregation.decode_gpus", None),
            ]
            return out
        # The scenario's own layout is replaced by the pools; it is set to a decode replica's so that
        # the scenario-level checks (heads per tp) see a layout the deployment uses.
        out += [("parallelism.tp", self.decode_tp), ("parallelism.cp", 1), ("parallelism.dp", 1)]
        d = "serving.disaggregation."
        out += [
            (d + "prefill_gpus", self.prefill_gpus),
            (d + "decode_gpus", self.decode_gpus),
            (d + "prefill_parallelism.tp", self.prefill_tp),
            (d + "prefill_parallelism.cp", self.prefill_cp),
            (d + "decode_parallelism.tp", self.decode_tp),
            (d + "decode_parallelism.ep", self.decode_ep),
        ]
        return out


def enumerate_serving_layouts(
    hardware: list,
    gpus_max: int,
    tp_choices: list,
    cp_choices: list,
    max_num_seqs: list,
    stacks: list,
    *,
    aggregated: bool = True,
    disaggregated: bool = True,
    gpus_min: int = 1,
    tp_ok=lambda tp: True,
    ep_choices=(1,),
    ep_ok=lambda ep: True,
    pp_choices=(1,),
) -> list:
    """Every deployment with gpus_min <= GPUs <= gpus_max, sorted (hardware, kind, layout, ...).

    Aggregated: tp x cp x pp x dp (pp from `pp_choices`), each (and each disaggregated decode pool,
    over its replicas) with every ep of `ep_choices` (whole numbers, or EP_ALL: tp x dp)
    that is 1 or a multiple of tp dividing tp x dp and splits the model's experts (`ep_ok`).
    Disaggregated: prefill replicas of tp x cp and decode replicas of tp
    (context parallelism splits long prompts, so only prefill replicas take it), at least one of
    each; every P:D ratio of replica counts that fits is a candidate. Each is crossed with every
    `max_num_seqs` value and stack label."""
    tps = sorted({t for t in tp_choices if t <= gpus_max and tp_ok(t)})
    cps = sorted({c for c in cp_choices if c <= gpus_max})
    per_shape = len(hardware) * len(max_num_seqs) * len(stacks)
    shapes: list = []

    def check() -> None:
        if len(shapes) * per_shape > MAX_SERVING_LAYOUTS:
            raise TooManyLayouts(
                f"more than {MAX_SERVING_LAYOUTS:,} candidate deployments; lower --gpus-max or give fewer "
                "--tp/--cp/--max-num-seqs/--methods choices or hardware"
            )

    if aggregated:
        for tp in tps:
            for cp in cps:
                for pp in sorted({p for p in pp_choices if tp * cp * p <= gpus_max}):
                    for dp in range(1, gpus_max // (tp * cp * pp) + 1):
                        for ep in expert_degrees(ep_choices, tp, dp, ep_ok):
                            shapes.append(
                                {"kind": AGGREGATED, "tp": tp, "cp": cp, "pp": pp, "dp": dp, "ep": ep}
                            )
                    check()
    if disaggregated:
        for ptp in tps:
            for pcp in cps:
                for dtp in tps:
                    for n_pre in range(1, (gpus_max - dtp) // (ptp * pcp) + 1):
                        room = gpus_max - n_pre * ptp * pcp
                        for n_dec in range(1, room // dtp + 1):
                            for dep in expert_degrees(ep_choices, dtp, n_dec, ep_ok):
                                shapes.append(
                                    {
                                        "kind": DISAGGREGATED,
                                        "prefill_replicas": n_pre,
                                        "prefill_tp": ptp,
                                        "prefill_cp": pcp,
                                        "decode_replicas": n_dec,
                                        "decode_tp": dtp,
                                        "decode_ep": dep,
                                    }
                                )
                        check()
    out = [
        ServingLayout(hardware=h, max_num_seqs=m, stack=s, **shape)
        for h in hardware
        for shape in shapes
        for m in max_num_seqs
        for s in stacks
    ]
    return sorted(x for x in out if x.gpus >= gpus_min)


def expert_degrees(choices, tp: int, dp: int, ok=lambda ep: True) -> list:
    """The ep values of `choices` (whole numbers, or EP_ALL for tp x dp) a layout of tp x dp GPUs
    takes, ascending: 1, or a multiple of tp that divides tp x dp (whole tensor-parallel groups
    share the experts) and that `ok` accepts (the model's experts split evenly)."""
    out = set()
    for choice in choices:
        ep = tp * dp if choice == EP_ALL else int(choice)
        if ep == 1 or (ep_splits(ep, tp, tp * dp) and ok(ep)):
            out.add(ep)
    return sorted(out)
