"""The Serve page's state: `values`, a flat dict of its controls keyed by path, its defaults, and the
codecs values <-> scenario mapping (with a `serving:` section that `roofline.serve` accepts) and
values <-> URL query.

Scenario fields (model, hardware, layout, formats, framework) and `serving.*` fields keep their
schema paths and checks (`SCHEMA`, `SERVING_SCHEMA`); the page's own controls (`arrival`,
`prompt.*`, `output.*`) are the shapes a control can hold, turned into the serving section's values
here. Only generated traffic: the dashboard never reads a trace or a histogram file, whatever a
request or a URL carries. Pure: no Dash, no files (the model reference goes through `model_refs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from roofline.api import SCHEMA, SERVING_SCHEMA, ScenarioError
from roofline.dashboards import codec_scenario, state
from roofline.dashboards.codec_scalar import NULL_OPTION, coerce_number, format_scalar, parse_scalar
from roofline.dashboards.model_refs import model_ref_problem

# One run simulates at most this many requests (the rate curve runs it several times per update,
# all within the dashboard's time budget); `roofline serve` takes up to 10 million.
MAX_REQUESTS = 2000
LENGTH_DISTS = ("fixed", "lognormal")
ARRIVALS = ("poisson", "offline", "closed loop")


@dataclass(frozen=True)
class PageField:
    """A control of this page that is no schema field: what `controls.field_control` reads."""

    kind: str
    help: str
    default: object = None
    choices: tuple = ()
    nullable: bool = False


def _length_fields(what: str, mean: int, sigma: float, most: int) -> dict:
    return {
        f"{what}.dist": PageField(
            "choice",
            f"{what.capitalize()} tokens per request: fixed (every request the mean) or lognormal "
            "(mean in tokens, sigma of the log).",
            "lognormal",
            LENGTH_DISTS,
        ),
        f"{what}.mean": PageField("int", f"Mean {what} tokens per request.", mean),
        f"{what}.sigma": PageField("float", f"Lognormal sigma of {what} lengths (of the log).", sigma),
        f"{what}.max": PageField(
            "int",
            f"Longest {what} drawn, in tokens (lognormal draws are clipped); empty = no clip.",
            most,
            nullable=True,
        ),
    }


PAGE_FIELDS = {
    "arrival": PageField(
        "choice",
        "poisson: requests arrive at the rate below (exponential gaps); offline: all queued at t = 0 "
        "(a max-throughput run; no rate curve); closed loop: a client keeping `concurrency` requests "
        "in flight, sending the next when one completes (as vllm bench serve --max-concurrency; no rate "
        "curve).",
        "poisson",
        ARRIVALS,
    ),
    **_length_fields("prompt", 2048, 0.8, 32768),
    **_length_fields("output", 256, 0.6, 2048),
}

SCENARIO_PATHS = (
    "model",
    "hardware",
    "parallelism.tp",
    "parallelism.pp",
    "parallelism.dp",
    "parallelism.ep",
    "dtype.weights",
    "dtype.kv",
    "runtime.framework",
)
SERVING_PATHS = (
    "serving.requests",
    "serving.arrival.rate_per_s",
    "serving.arrival.concurrency",
    "serving.scheduler.max_num_seqs",
    "serving.scheduler.max_batched_tokens",
    "serving.scheduler.chunked_prefill",
    "serving.scheduler.mixed_batches",
    "serving.routing",
    "serving.slo.ttft_s",
    "serving.slo.tpot_s",
    "serving.seed",
)

# The sidebar's sections: (title, paths) in order; every path is a control.
GROUPS = (
    ("Model and hardware", ("model", "hardware", "dtype.weights", "dtype.kv", "runtime.framework")),
    (
        "GPUs and layout",
        ("parallelism.tp", "parallelism.pp", "parallelism.dp", "parallelism.ep", "serving.routing"),
    ),
    (
        "Traffic",
        (
            "serving.requests",
            "arrival",
            "serving.arrival.rate_per_s",
            "serving.arrival.concurrency",
            "serving.seed",
        ),
    ),
    ("Prompt lengths", ("prompt.dist", "prompt.mean", "prompt.sigma", "prompt.max")),
    ("Output lengths", ("output.dist", "output.mean", "output.sigma", "output.max")),
    (
        "Scheduler",
        (
            "serving.scheduler.max_num_seqs",
            "serving.scheduler.max_batched_tokens",
            "serving.scheduler.chunked_prefill",
            "serving.scheduler.mixed_batches",
        ),
    ),
    ("SLOs (seconds)", ("serving.slo.ttft_s", "serving.slo.tpot_s")),
)
PATHS = tuple(p for _, paths in GROUPS for p in paths)

# The README's serving example (scenarios/serve-llama3-8b-h100.yaml), at the dashboard's size.
SERVE_DEFAULTS = {
    **{p: state.DEFAULTS[p] for p in SCENARIO_PATHS},
    **{p: SERVING_SCHEMA[p].default for p in SERVING_PATHS},
    **{p: f.default for p, f in PAGE_FIELDS.items()},
    "serving.requests": 1000,
    "serving.arrival.rate_per_s": 8.0,
    "serving.arrival.concurrency": 64,
    "serving.slo.ttft_s": 1.0,
    "serving.slo.tpot_s": 0.05,
}

# Asked for by a URL or a request, these would make the server open a file: refused, with the reason.
FILE_FIELDS = {
    "serving.arrival.trace": "trace files are read by `roofline serve` only, never by the dashboard",
    "histogram": "length histograms are files, read by `roofline serve` only, never by the dashboard",
}


def spec(path: str):
    """The field's schema entry (kind, help, choices, nullable): the scenario's, the serving
    section's or the page's own."""
    if path in PAGE_FIELDS:
        return PAGE_FIELDS[path]
    return SERVING_SCHEMA[path] if path.startswith("serving.") else SCHEMA[path]


def label(path: str) -> str:
    return {
        "serving.requests": "requests",
        "serving.arrival.rate_per_s": "rate (req/s)",
        "serving.arrival.concurrency": "concurrency (closed loop)",
        "serving.slo.ttft_s": "TTFT (s)",
        "serving.slo.tpot_s": "TPOT (s)",
        "runtime.framework": "framework",
    }.get(path, path.rsplit(".", 1)[-1].replace("_", " "))


def values_from_controls(fields: dict) -> dict:
    """{path: control value} -> values: numbers coerced to their field's kind, an empty nullable
    field None; a path the page does not have is refused (a crafted request)."""
    values = dict(SERVE_DEFAULTS)
    for path, v in fields.items():
        if path not in SERVE_DEFAULTS:
            raise ScenarioError(
                [f"{str(path)[:60]!r}: not a control of the Serve page ({_file_reason(path)})"]
            )
        s = spec(path)
        if isinstance(v, str) and s.kind in ("int", "float"):
            try:
                v = parse_scalar(v, s.kind, nullable=s.nullable)
            except ValueError:
                pass  # roofline.serve names the field and the expected type
        elif s.nullable and (v == "" or (v == NULL_OPTION and s.kind == "bool")):
            v = None  # an empty box, or a switch's "default" option
        values[path] = coerce_number(v, s.kind)
    return values


def _file_reason(path) -> str:
    if path == "serving.arrival.trace":
        return FILE_FIELDS["serving.arrival.trace"]
    return "only its own controls are read"


def _length(values: dict, what: str):
    dist = values[f"{what}.dist"]
    if dist not in LENGTH_DISTS:
        reason = FILE_FIELDS["histogram"] if dist == "histogram" else f"one of {', '.join(LENGTH_DISTS)}"
        raise ScenarioError(
            [
                f"{what} lengths: {str(dist)[:60]!r}: the dashboard draws {' or '.join(LENGTH_DISTS)} lengths ({reason})"
            ]
        )
    mean, most = values[f"{what}.mean"], values[f"{what}.max"]
    if dist == "fixed":
        return mean
    out = {"dist": "lognormal", "mean": mean, "sigma": values[f"{what}.sigma"]}
    if most is not None:
        out["max"] = most
    return out


def to_scenario(values: dict, upload_dir=None) -> dict:
    """The scenario mapping `roofline.serve` accepts: the Plan codec's scenario for the model and
    layout (its workload is ignored by serve) plus the `serving:` section."""
    requests = values["serving.requests"]
    if isinstance(requests, int) and not isinstance(requests, bool) and requests > MAX_REQUESTS:
        raise ScenarioError(
            [
                f"serving.requests: {requests:,}; the dashboard simulates at most {MAX_REQUESTS:,} requests per run "
                "(use `roofline serve` for more)"
            ]
        )
    plan = dict(state.DEFAULTS, **{p: values[p] for p in SCENARIO_PATHS}, name="dashboard-serve")
    doc = codec_scenario.to_scenario(plan, upload_dir)
    if values["arrival"] not in ARRIVALS:
        raise ScenarioError([f"arrival: {str(values['arrival'])[:60]!r} is not one of {', '.join(ARRIVALS)}"])
    arrival = {
        "poisson": {"rate_per_s": values["serving.arrival.rate_per_s"]},
        "offline": {"offline": True},
        "closed loop": {"concurrency": values["serving.arrival.concurrency"]},
    }[values["arrival"]]
    serving: dict = {
        "requests": requests,
        "seed": values["serving.seed"],
        "arrival": arrival,
        "prompt_tokens": _length(values, "prompt"),
        "output_tokens": _length(values, "output"),
        "scheduler": {
            "max_num_seqs": values["serving.scheduler.max_num_seqs"],
            "max_batched_tokens": values["serving.scheduler.max_batched_tokens"],
            "chunked_prefill": values["serving.scheduler.chunked_prefill"],
            "mixed_batches": values["serving.scheduler.mixed_batches"],
        },
        "routing": values["serving.routing"],
        "slo": {"ttft_s": values["serving.slo.ttft_s"], "tpot_s": values["serving.slo.tpot_s"]},
    }
    doc["serving"] = serving
    return doc


def file_problems(doc: dict) -> list:
    """Fields of a scenario's serving section that name a file: the dashboard runs none of them."""
    serving = doc.get("serving")
    if not isinstance(serving, dict):
        return ["the dashboard's scenario has no serving: section"]
    problems = []
    arrival = serving.get("arrival")
    if isinstance(arrival, dict) and arrival.get("trace") is not None:
        problems.append(f"serving.arrival.trace: {FILE_FIELDS['serving.arrival.trace']}")
    for key in ("prompt_tokens", "output_tokens"):
        v = serving.get(key)
        if isinstance(v, dict) and (v.get("dist") == "histogram" or "file" in v):
            problems.append(f"serving.{key}: {FILE_FIELDS['histogram']}")
    return problems


def to_query(values: dict) -> str:
    """Query string (without '?') of the values that differ from the defaults."""
    pairs = []
    for path in PATHS:
        v = values.get(path, SERVE_DEFAULTS[path])
        if v != SERVE_DEFAULTS[path] or type(v) is not type(SERVE_DEFAULTS[path]):
            pairs.append((path, format_scalar(v)))
    return urlencode(pairs, safe=":,")


def from_query(query: dict, catalog: dict, upload_dir=None) -> tuple:
    """(values, problems) from a URL's query parameters; a bad parameter keeps its default and
    says why. A parameter naming a file (a trace) is ignored with the reason."""
    values = dict(SERVE_DEFAULTS)
    problems: list = []
    for key, raw in query.items():
        raw = str(raw[-1] if isinstance(raw, list) else raw)
        if key not in SERVE_DEFAULTS:
            why = FILE_FIELDS.get(key, "unknown")
            problems.append(f"URL parameter {key[:60]!r}: {why}; ignored")
            continue
        s = spec(key)
        try:
            values[key] = parse_scalar(raw, s.kind, s.choices, s.nullable)
        except ValueError as exc:
            expected = str(exc)
            if key.endswith(".dist") and raw == "histogram":
                expected = f"{' or '.join(LENGTH_DISTS)} ({FILE_FIELDS['histogram']})"
            problems.append(
                f"URL parameter {key}={raw[:60]!r}: expected {expected}; kept {SERVE_DEFAULTS[key]!r}"
            )
    problem = model_ref_problem(values["model"], "URL parameter model", catalog["model"], upload_dir)
    if problem:
        problems.append(problem)
        values["model"] = SERVE_DEFAULTS["model"]
    for path, valid in catalog.items():
        if path in values and path != "model" and values[path] not in valid:
            problems.append(
                f"URL parameter {path}={values[path]!r}: not one of {', '.join(valid)}; kept {SERVE_DEFAULTS[path]!r}"
            )
            values[path] = SERVE_DEFAULTS[path]
    return values, problems
