"""`roofline plan --serving`: the cheapest serving deployments that meet a scenario's SLOs at its rate.

`search_serving(scenario, ...)` enumerates candidate deployments (`simulator.serving.search_space`:
aggregated tp x cp x dp, disaggregated prefill/decode pools at every P:D ratio, each `max_num_seqs`
and method stack, on each hardware), and for each runs the serving simulator (`roofline.serve`) at
the scenario's arrival rate, then searches its max sustainable rate (`simulator.serving.capacity`:
bracketing and geometric bisection on `serving.arrival.rate_per_s` to a relative tolerance). One
deployment is one work unit; units run on an executor (`roofline.executors`: in process, a local
process pool, or Ray tasks) and come back in the candidates' sorted order, so the result is the same
whichever ran them.

Definitions. A deployment is *feasible* when its run at the requested rate reaches the attainment
target: at least `attainment` of the requests meet both `serving.slo` objectives (a missing one
always holds). Its cost is the run's `cost.usd_per_million_output_tokens`: all its GPUs' $/hour over
the output tokens per second it achieved at that rate. Feasible deployments are ranked by that cost,
then by the higher max sustainable rate (headroom), then by the candidates' order; the Pareto front
is of cost vs the p90 of TPOT (or TTFT, E2E) over the feasible ones. Every run of one deployment
keeps the scenario's seed, so its runs at different rates see the same requests, the arrival gaps
scaled by 1 / rate (the capacity search's monotonicity rests on that).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from roofline.simulator.errors import UserError
from roofline.simulator.planner import pareto_front, powers_of_two
from roofline.simulator.scenario import ScenarioError
from roofline.simulator.scenario_checks import expert_split_problem, tp_shards_evenly
from roofline.simulator.serving.capacity import max_sustainable_rate
from roofline.simulator.serving.config import ServingConfig
from roofline.simulator.serving.search_space import (
    AGGREGATED,
    EP_ALL,
    TooManyLayouts,
    enumerate_serving_layouts,
)

LATENCY_KEYS = {"tpot": "tpot_p90_s", "ttft": "ttft_p90_s", "e2e": "e2e_p90_s"}
# A run at the max rate whose arrivals span fewer end-to-end latencies (p90) than this is flagged
# `max_rate_short_run`: its queue had little time to grow, so the rate may be above what a long
# run sustains (`simulator.serving.capacity`). Ten: an overload of 10% then adds about one E2E of
# queueing to the last arrivals, enough to break a TTFT objective of that order.
SHORT_RUN_E2E = 10.0
# The saturated-throughput run (the max rate's cap) holds this many full batches per replica (8: within
# 1% of a run 4x longer in `saturated_requests`' example), its requests at most this many times the
# search's own (the cost of the run stays that of about ten of the search's).
STEADY_TURNOVERS = 8
SATURATION_RUN_MAX_SCALE = 10


@dataclass(frozen=True)
class SearchSpec:
    """What every work unit shares: the scenario (a mapping, flags and overrides applied, its sweep
    removed), the requested rate, the attainment target, the capacity search's tolerance and the
    method stacks by label (None: the scenario's own methods)."""

    doc: dict
    name: str
    rate_per_s: float
    attainment: float
    rel_tol: float
    stacks: tuple  # ((label, [method specs] | None), ...)


@dataclass
class ServingPlan:
    rows: list  # one per candidate, in the candidates' sorted order (`evaluate_unit`'s rows)
    ranked: list  # indices of the feasible rows, cheapest first
    front: list  # per row: on the Pareto front of cost vs latency among the feasible
    rate_per_s: float
    attainment: float
    slo: dict  # {"ttft_s", "tpot_s"}
    latency: str  # the front's latency axis: tpot, ttft or e2e (each the p90 over requests)
    executor: str

    @property
    def best(self) -> dict | None:
        return self.rows[self.ranked[0]] if self.ranked else None

    def unmet_reason(self, gpus_max: int) -> str:
        """Why no deployment is feasible: the best max sustainable rate against the requested one, or
        (when none ran) the first refusal."""
        ran = [r for r in self.rows if r["error"] is None]
        slo = " and ".join(f"{k[:4].upper()} <= {v:g} s" for k, v in self.slo.items() if v is not None)
        target = f"{self.attainment:.0%} of requests within {slo}"
        if not ran:
            return f"no deployment within {gpus_max} GPUs runs: {self.rows[0]['error']}"
        best = max(ran, key=lambda r: (r["max_rate_per_s"], -r["gpus"]))
        return (
            f"no deployment within {gpus_max} GPUs meets the SLO ({target}) at {self.rate_per_s:g} req/s: "
            f"the max sustainable rate of the best one ({best['hardware']} {best['label']}, {best['layout']['stack']}, "
            f"max_num_seqs {best['layout']['max_num_seqs']}) is {best['max_rate_per_s']:.4g} req/s < the requested "
            f"{self.rate_per_s:g}"
        )


def _run(spec: SearchSpec, layout, rate: float) -> dict:
    """The serve record of the deployment at arrival rate `rate` (the scenario's seed kept)."""
    from roofline.api import serve

    overrides = [*layout.overrides(), ("serving.arrival.rate_per_s", rate)]
    methods = dict(spec.stacks)[layout.stack]
    if methods is not None:
        overrides.append(("methods", copy.deepcopy(methods)))
    return serve(spec.doc, overrides, spec.name).record


def saturated_requests(layout, requests: int, max_num_seqs: int | None = None) -> int:
    """Requests in the run that measures a deployment's saturated throughput: the search's own count,
    raised towards STEADY_TURNOVERS full batches per replica (at most SATURATION_RUN_MAX_SCALE times the
    count). All queued at t = 0, a run of few batches spends its time filling the first batch and
    draining the last (Llama 3.1 8B on one H100, chat traffic, max_num_seqs 256: 120 requests give
    6.6 req/s, 1,200 give 11.8, 2,048 give 11.4, 8,192 give 11.3), so a short search's cap would sit
    far below what the deployment sustains. `max_num_seqs`: the limit its scheduler ran with (the
    framework's where the layout leaves it unset), else the layout's."""
    # the schedulers: dp replicas of pp micro-batches each, or the decode pool's replicas
    replicas = layout.dp * layout.pp if layout.kind == AGGREGATED else layout.decode_replicas
    seqs = layout.max_num_seqs if max_num_seqs is None else max_num_seqs
    steady = STEADY_TURNOVERS * max(replicas, 1) * max(seqs, 1)
    return int(max(requests, min(steady, SATURATION_RUN_MAX_SCALE * requests)))


def serve_offline(
    spec: SearchSpec, layout, requests: int | None = None, scheduler: dict | None = None
) -> dict:
    """The serve record of the deployment with the requests all queued at t = 0 (`requests`: that
    many instead of the scenario's count; `scheduler`: the limits the deployment's own run had, so
    that queueing everything does not switch to a framework's offline defaults)."""
    from roofline.api import serve

    doc = copy.deepcopy(spec.doc)
    serving = doc.setdefault("serving", {})
    arrival = {
        k: v
        for k, v in (serving.get("arrival") or {}).items()
        if k not in ("rate_per_s", "cv", "concurrency")
    }
    serving["arrival"] = {**arrival, "offline": True}
    if requests is not None:
        serving["requests"] = requests
    overrides = list(layout.overrides())
    methods = dict(spec.stacks)[layout.stack]
    if methods is not None:
        overrides.append(("methods", copy.deepcopy(methods)))
    for key, value in (scheduler or {}).items():
        overrides.append((f"serving.scheduler.{key}", value))
    return serve(doc, overrides, spec.name).record


def evaluate_unit(unit: tuple) -> dict:
    """One work unit, (SearchSpec, ServingLayout) -> its row: the run at the requested rate and the
    max sustainable rate. A deployment the simulator refuses (KV cache too small for a request,
    weights that do not fit) is a row with `error` set and `feasible` false. What a finite run's
    "sustainable" means, and how the run's length bears on it: `simulator.serving.capacity`."""
    spec, layout = unit
    row = {
        "hardware": layout.hardware,
        "gpus": layout.gpus,
        "layout": layout.fields(),
        "label": layout.label,
        "feasible": False,
        "error": None,
    }
    try:
        rec = _run(spec, layout, spec.rate_per_s)
    except UserError as exc:
        return {**row, **dict.fromkeys(_FIGURES), "runs": 1, "error": str(exc).splitlines()[0]}
    records = {spec.rate_per_s: rec}

    def meets(rate: float) -> bool:
        records[rate] = _run(spec, layout, rate)
        return records[rate]["slo_attainment"] >= spec.attainment

    ok = rec["slo_attainment"] >= spec.attainment
    # requests all queued at t = 0, enough for the batches to turn over: the throughput no arrival
    # rate can exceed
    ran = rec["scheduler"]
    offline = serve_offline(
        spec, layout, saturated_requests(layout, rec["requests"], ran["max_num_seqs"]), ran
    )["throughput"]["requests_per_s"]
    cap = max_sustainable_rate(meets, spec.rate_per_s, ok, spec.rel_tol, ceiling=offline)
    at_max = records.get(cap.lo) if cap.lo > 0 else None
    window = at_max["requests"] / cap.lo if at_max else None
    short = bool(at_max and window < SHORT_RUN_E2E * at_max["e2e_s"]["p90"])
    return {
        **row,
        "feasible": ok,
        "slo_attainment": rec["slo_attainment"],
        "goodput_requests_per_s": rec["goodput_requests_per_s"],
        "requests_per_s": rec["throughput"]["requests_per_s"],
        "output_tokens_per_s": rec["throughput"]["output_tokens_per_s"],
        "ttft_p90_s": rec["ttft_s"]["p90"],
        "tpot_p90_s": rec["tpot_s"]["p90"],
        "e2e_p90_s": rec["e2e_s"]["p90"],
        "usd_per_hour": rec["cost"]["usd_per_hour"],
        "usd_per_million_output_tokens": rec["cost"]["usd_per_million_output_tokens"],
        "max_rate_per_s": cap.rate_per_s,
        "max_rate_missed_per_s": cap.hi,
        "usd_per_million_output_tokens_at_max_rate": (
            at_max["cost"]["usd_per_million_output_tokens"] if at_max else None
        ),
        "max_rate_arrival_window_s": window,
        "max_rate_short_run": short,
        "saturated_requests_per_s": offline,
        "runs": 2 + cap.runs,
    }


_FIGURES = (
    "slo_attainment",
    "goodput_requests_per_s",
    "requests_per_s",
    "output_tokens_per_s",
    "ttft_p90_s",
    "tpot_p90_s",
    "e2e_p90_s",
    "usd_per_hour",
    "usd_per_million_output_tokens",
    "max_rate_per_s",
    "max_rate_missed_per_s",
    "usd_per_million_output_tokens_at_max_rate",
    "max_rate_arrival_window_s",
    "max_rate_short_run",
)


def _absolute_files(doc: dict, base: Path | None) -> None:
    """Histogram files named relative to the scenario file, made absolute (as `serve` resolves them
    from a file: the working directory first, then the scenario's folder), so that a work unit in
    another process or on another machine with the same file system finds them."""
    serving = doc.get("serving")
    if base is None or not isinstance(serving, dict):
        return
    for key in ("prompt_tokens", "output_tokens"):
        spec = serving.get(key)
        if isinstance(spec, dict) and isinstance(spec.get("file"), str):
            p = Path(spec["file"])
            if not p.is_absolute() and not p.exists() and (base / p).exists():
                spec["file"] = str((base / p).resolve())


def search_serving(
    scenario,
    overrides=(),
    *,
    name: str | None = None,
    hardware: list | None = None,
    gpus_max: int = 8,
    gpus_min: int = 1,
    tp: list | None = None,
    cp: list | None = None,
    ep: list | None = None,
    pp: list | None = None,
    max_num_seqs: list | None = None,
    stacks: list | None = None,
    aggregated: bool = True,
    disaggregated: bool = True,
    rate_per_s: float | None = None,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    attainment: float = 0.9,
    rel_tol: float = 0.05,
    latency: str = "tpot",
    executor=None,
    progress=None,
) -> ServingPlan:
    """Search the deployments of a serving scenario (a path or a mapping with a `serving:` section).

    Defaults: the scenario's hardware (or its `sweep.hardware`), tp every power of two up to
    `gpus_max` that splits the model's heads, cp 1, pp 1 (`pp`: pipeline stages per replica), ep 1
    (`ep`: whole numbers or "all", expert parallelism over the tp x dp GPUs; pp and ep: aggregated
    candidates only), the scenario's `max_num_seqs`,
    its own methods;
    `rate_per_s`, `ttft_s`, `tpot_s` default to the scenario's `serving.arrival.rate_per_s` and
    `serving.slo`. `stacks` is [(label, [method specs])]. `executor` (`roofline.executors`) defaults
    to running in this process; `progress(done, total)` hears of each deployment evaluated."""
    from roofline.api import load_model, load_scenario, read_scenario_file, set_path
    from roofline.executors import InProcess

    if isinstance(scenario, (str, Path)):
        doc, base = read_scenario_file(scenario), Path(scenario).parent
        name = name or Path(scenario).stem
        if not isinstance(doc, dict):
            raise ScenarioError([f"{scenario}: a scenario must be a YAML mapping of fields"])
    else:
        doc, base = copy.deepcopy(scenario), None
        name = name or "<scenario>"
    for text in overrides:
        from roofline.api import parse_override

        set_path(doc, *(parse_override(text) if isinstance(text, str) else text))
    if doc.get("name") is None:
        doc["name"] = name
    sweep = doc.pop("sweep", None)
    swept_hw = sweep.get("hardware") if isinstance(sweep, dict) else None
    if rate_per_s is not None:
        set_path(doc, "serving.arrival.rate_per_s", rate_per_s)
    if ttft_s is not None:
        set_path(doc, "serving.slo.ttft_s", ttft_s)
    if tpot_s is not None:
        set_path(doc, "serving.slo.tpot_s", tpot_s)
    _absolute_files(doc, base)
    # validates everything the search leaves as it is (lengths: the serving section)
    sc = load_scenario(doc, (), name, require_workload=False)
    if sc.serving is None:
        raise ScenarioError([f"{name}: no serving: section; plan --serving needs one (docs/serving.md)"])
    cfg = ServingConfig.from_values(sc.serving)
    if cfg.rate_per_s is None:
        raise ScenarioError(
            [
                f"{name}: serving.arrival: the search needs an arrival rate (serving.arrival.rate_per_s or --rate), "
                "not a trace or offline: true"
            ]
        )
    if cfg.slo_ttft_s is None and cfg.slo_tpot_s is None:
        raise ScenarioError(
            [
                f"{name}: serving.slo: give an objective to meet (--ttft-max/--tpot-max or serving.slo.ttft_s/tpot_s)"
            ]
        )
    if not 0 < attainment <= 1:
        raise ScenarioError([f"--attainment {attainment}: give a share of requests in (0, 1]"])
    if not 0 < rel_tol < 1:
        raise ScenarioError([f"--rate-tol {rel_tol}: give a relative tolerance in (0, 1)"])
    if latency not in LATENCY_KEYS:
        raise ScenarioError([f"--latency {latency}: give one of {', '.join(LATENCY_KEYS)}"])
    if not 1 <= gpus_min <= gpus_max:
        raise ScenarioError([f"--gpus-min {gpus_min}, --gpus-max {gpus_max}: give 1 <= min <= max"])

    model = load_model(sc.base["model"])
    mixers = {g.mixer for g in model.layer_groups if g.mixer.kind in ("attention", "mla")}
    for e in ep or ():
        if e != EP_ALL and (isinstance(e, bool) or not isinstance(e, int) or e < 1):
            raise ScenarioError([f"{name}: ep choice {e!r}: give positive whole numbers or {EP_ALL!r}"])
    if ep and any(e != 1 for e in ep) and not model.has_moe:
        raise ScenarioError([f"{name}: --ep: {sc.base['model']} has no experts to split; leave --ep out"])
    hw = list(hardware or swept_hw or [sc.base["hardware"]])
    methods = doc.get("methods") or []
    own = "+".join(m["name"] for m in methods if isinstance(m, dict) and "name" in m) or "dense"
    stack_list = [(label, list(specs)) for label, specs in stacks] if stacks else [(own, None)]
    try:
        layouts = enumerate_serving_layouts(
            hw,
            gpus_max,
            tp or powers_of_two(gpus_max),
            cp or [1],
            max_num_seqs or [cfg.max_num_seqs],
            [label for label, _ in stack_list],
            aggregated=aggregated,
            disaggregated=disaggregated,
            gpus_min=gpus_min,
            tp_ok=lambda t: all(tp_shards_evenly(m, t) for m in mixers),
            ep_choices=ep or [1],
            pp_choices=pp or [1],
            ep_ok=lambda e: expert_split_problem(model, sc.base["model"], e) is None,
        )
    except TooManyLayouts as exc:
        raise ScenarioError([f"{name}: {exc}"]) from None
    if not layouts:
        raise ScenarioError(
            [
                f"{name}: no deployment to try within {gpus_max} GPUs: check --tp/--cp against the model's heads"
            ]
        )
    spec = SearchSpec(doc, name, float(cfg.rate_per_s), attainment, rel_tol, tuple(stack_list))
    executor = executor or InProcess()
    rows = executor.map(evaluate_unit, [(spec, layout) for layout in layouts], progress)
    feasible = [i for i, r in enumerate(rows) if r["feasible"]]
    ranked = sorted(
        feasible, key=lambda i: (rows[i]["usd_per_million_output_tokens"], -rows[i]["max_rate_per_s"], i)
    )
    key = LATENCY_KEYS[latency]
    front = pareto_front(
        [r["usd_per_million_output_tokens"] if r["feasible"] else float("inf") for r in rows],
        [r[key] if r["feasible"] and r[key] is not None else float("inf") for r in rows],
        [r["feasible"] for r in rows],
    )
    slo = {"ttft_s": cfg.slo_ttft_s, "tpot_s": cfg.slo_tpot_s}
    return ServingPlan(
        rows, ranked, [bool(f) for f in front], float(cfg.rate_per_s), attainment, slo, latency, executor.name
    )
