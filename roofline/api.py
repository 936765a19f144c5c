"""Python API and the I/O edge of the planning path: read scenario files, resolve names, run.

`simulate(scenario)` accepts a path, a YAML string's parsed mapping, or a validated Scenario and
returns a `SweepResult` (records via `.records()`); `sweep(...)` returns its columns.
"""

from __future__ import annotations

import copy
import platform
from pathlib import Path

import numpy as np
import yaml

import roofline
from roofline.fileio import YAMLLimitError, load_yaml, load_yaml_file
from roofline.hwspecs import (
    HardwareSpecError,
    fabrics,
    find_profile,
    list_hardware,
    load_fabric,
    load_hardware,
    read_profile,
    unknown_name_message,
)
from roofline.models import load_model
from roofline.simulator.calibration import TORCH_KERNEL_SOURCE, CalibrationError, torch_kernels
from roofline.simulator.errors import UserError, short
from roofline.simulator.frameworks import FRAMEWORKS
from roofline.simulator.model import ModelConfigError
from roofline.simulator.results import record
from roofline.simulator.scenario import (
    Scenario,
    ScenarioError,
    set_path,
    validate,
)
from roofline.simulator.scenario_checks import model_dependent_problems
from roofline.simulator.scenario_schema import SCHEMA, SECTIONS, TOP_LEVEL
from roofline.simulator.sweep import SweepResult, run_scenario
from roofline.simulator.sweep import step_model as build_step_model

MAX_SCENARIO_BYTES = 1 * 2**20


def _model_problem(name: str):
    try:
        load_model(name)
    except ModelConfigError as exc:
        return str(exc)
    return None


def _fabric_problem(name: str):
    valid = sorted(fabrics())
    return None if name in valid else unknown_name_message("fabric", name, valid)


def _hardware_problem(name: str):
    return None if name in list_hardware() else unknown_name_message("hardware", name, list_hardware())


def _calibration_problem(value: str, source: str, hardware: list):
    """auto and datasheet always work; a path must be a valid profile of the scenario's hardware."""
    if value in ("auto", "datasheet"):
        return None
    try:
        profile = read_profile(value)
    except CalibrationError as exc:
        return f"{source}: calibration: {exc}. Valid: auto, datasheet, or a profile path"
    if profile.hardware not in hardware:
        return f"{source}: calibration: {value} is a profile of {profile.hardware}, but the scenario runs on {', '.join(hardware)}"
    return None


def profiles_for(scenario) -> dict:
    """hardware name -> Profile for the scenario's calibration setting (auto: hwspecs/calibration/)."""
    return _profiles(scenario)[0]


def _profiles(scenario) -> tuple:
    """(hardware name -> Profile, warnings). With `calibration: auto` a profile that cannot be used
    falls back to the datasheet efficiencies with a warning (the run goes on; an explicit profile
    path is the user's choice and its errors stop the run)."""
    setting = scenario.base["calibration"]
    hardware = dict(scenario.sweep).get("hardware", [scenario.base["hardware"]])
    if setting == "datasheet":
        return {}, []
    if setting == "auto":
        frameworks = dict(scenario.sweep).get("runtime.framework", [scenario.base["runtime.framework"]])
        profiles, warnings = {}, []
        for h in hardware:
            for fw in frameworks:
                try:
                    profile = find_profile(h, framework=fw)
                    if profile is None and FRAMEWORKS[fw].torch_kernels:
                        # eager PyTorch: the kernels it shares with a serving engine's tables
                        shared = find_profile(h, framework=TORCH_KERNEL_SOURCE)
                        profile = shared and torch_kernels(shared, load_hardware(h).architecture)
                except CalibrationError as exc:
                    reason = " ".join(str(exc).split())
                    warnings.append(
                        f"calibration: auto: the measured profile of {h} is unusable, so datasheet efficiencies "
                        f"are used ({reason[:300]}{'...' if len(reason) > 300 else ''})"
                    )
                    continue
                if profile is not None:
                    # one framework: keyed by hardware; a framework sweep keys each (hardware, framework)
                    profiles[h if len(frameworks) == 1 else (h, fw)] = profile
        return profiles, warnings
    profile = read_profile(setting)
    return {profile.hardware: profile}, []


def read_scenario_file(path: str | Path) -> dict:
    """A scenario file's mapping: size-limited, regular files only, aliases bounded (fileio)."""
    return load_yaml_file(path, MAX_SCENARIO_BYTES, "scenario file", lambda msg: ScenarioError([msg]))


def parse_override(text: str):
    """'workload.batch=8' -> ('workload.batch', 8); the value is read as YAML (typed, safe)."""
    if "=" not in text:
        raise ScenarioError([f"--set {text!r}: expected path=value, e.g. workload.batch=8"])
    path, raw = text.split("=", 1)
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except (YAMLLimitError, RecursionError) as exc:
        raise ScenarioError([f"--set {short(path.strip())}: value refused: {exc}"]) from None
    return path.strip(), value


def _canonical_hardware(doc: dict) -> None:
    """Hardware names in any case (`H100-SXM`) as the registry spells them, in place."""
    known = {h.lower(): h for h in list_hardware()}

    def fix(v):
        return known.get(v.lower(), v) if isinstance(v, str) else v

    if "hardware" in doc:
        doc["hardware"] = fix(doc["hardware"])
    sweep = doc.get("sweep")
    if isinstance(sweep, dict) and isinstance(sweep.get("hardware"), list):
        sweep["hardware"] = [fix(v) for v in sweep["hardware"]]


def load_scenario(source, overrides=(), name: str | None = None, require_workload: bool = True) -> Scenario:
    """Validate a scenario from a file path or a mapping, applying `--set` style overrides.

    The one pipeline every face goes through: read, override, `validate` (fields, names, layout;
    the methods parsed once into `Scenario.stack`), the calibration setting, then the checks that
    need the models (`scenario_checks`). A Scenario passed in has been through it already."""
    if isinstance(source, Scenario):
        return source
    if isinstance(source, (str, Path)):
        doc, where = read_scenario_file(source), str(source)
    else:
        doc, where = copy.deepcopy(source), name or "<scenario>"
    if isinstance(doc, dict):
        for text in overrides:
            path, value = parse_override(text) if isinstance(text, str) else text
            set_path(doc, path, value)
        _canonical_hardware(doc)
    scenario = validate(
        doc,
        where,
        {"model": _model_problem, "hardware": _hardware_problem, "topology.fabric": _fabric_problem},
        require_workload,
    )
    problem = _calibration_problem(
        scenario.base["calibration"], where, dict(scenario.sweep).get("hardware", [scenario.base["hardware"]])
    )
    if problem:
        raise ScenarioError([problem])
    problems = model_dependent_problems(scenario, load_model, where)
    if problems:
        raise ScenarioError(problems)
    return scenario


def versions() -> dict:
    return {"roofline": roofline.__version__, "numpy": np.__version__, "python": platform.python_version()}


# One JSON-ready record per point costs ~40 us and ~0.5 kB: 20,000 take about a second. Larger
# sweeps are read as columns (`Result.columns`, `roofline.sweep`), which hold MAX_SWEEP_POINTS.
MAX_RECORDS = 20_000


class Result(SweepResult):
    """A SweepResult with record helpers."""

    def records(self, indices=None) -> list:
        """One JSON-ready record per point (or per point of `indices`)."""
        if indices is not None:
            v = versions()
            return [record(self, i, v) for i in indices]
        if self.n > MAX_RECORDS:
            raise ScenarioError(
                [
                    f"{self.scenario.name}: sweep: {self.n:,} points; records are built for at most "
                    f"{MAX_RECORDS:,}: read the columns instead (result.columns, roofline.sweep)"
                ]
            )
        v = versions()
        return [record(self, i, v) for i in range(self.n)]

    def to_pandas(self):
        """The columns as a pandas DataFrame, one row per point, the swept values first (pandas is
        optional: installed separately)."""
        try:
            import pandas as pd
        except ModuleNotFoundError:
            raise ScenarioError(["to_pandas needs pandas: python -m pip install pandas"]) from None
        point = {path: np.asarray(values, dtype=object)[idx] for path, values, idx in self.axes}
        return pd.DataFrame({**point, **self.columns})


def scenario_from_fields(fields: dict) -> dict:
    """A scenario mapping from keyword fields: top-level fields by name (`model`, `hardware`, `gpus`,
    `methods`, `sweep`, …) and section fields by their own name when it is unique (`batch`,
    `prompt_tokens`, `tp`, `kv`, …) or by their dotted path."""
    doc: dict = {}
    leaves: dict = {}
    for path in SCHEMA:
        if "." in path:
            leaves.setdefault(path.split(".", 1)[1], []).append(path)
    for key, value in fields.items():
        if key in TOP_LEVEL and key not in SECTIONS:
            doc[key] = value
            continue
        paths = [key] if key in SCHEMA else leaves.get(key, [])
        if len(paths) != 1:
            valid = sorted(k for k, p in leaves.items() if len(p) == 1)
            why = (
                f"is ambiguous: {' or '.join(paths)}"
                if paths
                else f"is not a field.{did_you_mean(key, valid)}"
            )
            raise ScenarioError([f"simulate({key}=...): {key!r} {why}"])
        set_path(doc, paths[0], value)
    return doc


def simulate(scenario=None, overrides=(), name: str | None = None, **fields) -> Result:
    """Run a scenario (path, mapping or Scenario), or one given as keyword fields
    (`simulate(model="llama-3.1-8b", hardware="h100-sxm", prompt_tokens=131072, batch=4)`);
    returns a Result with `.records()`, `.columns` and `.to_pandas()`. `name` labels a mapping's
    error messages (default '<scenario>'); the scenario's own name is its `name:` field, else that
    label's file stem."""
    if fields:
        if scenario is not None:
            raise ScenarioError(["simulate: give a scenario or keyword fields, not both"])
        scenario = scenario_from_fields(fields)
    elif scenario is None:
        raise ScenarioError(["simulate: give a scenario (a path, a mapping) or keyword fields"])
    sc = load_scenario(scenario, overrides, name)
    profiles, warnings = _profiles(sc)
    res = run_scenario(sc, load_model, load_hardware, load_fabric, profiles)
    res.warnings += [(msg, np.ones(res.n, bool)) for msg in warnings]
    res.__class__ = Result
    return res


def step_model(scenario, overrides=(), name: str | None = None):
    """The step-cost model of a one-configuration scenario: `.cost(new_tokens, cached_tokens)` gives
    the time, FLOPs and bytes of one forward pass over sequences in any mix of prefill chunks and
    decode steps (arrays), as a serving scheduler needs them."""
    sc = load_scenario(scenario, overrides, name, require_workload=False)  # batches are given per call
    return build_step_model(sc, load_model, load_hardware, load_fabric, profiles_for(sc))


def serve(scenario, overrides=(), name: str | None = None):
    """Request-level serving simulation of a scenario with a `serving:` section (docs/serving.md):
    a `ServeResult` whose `.record` holds SPEC's serve keys and `.timelines` every request's times
    (a list of them, one per point, when the scenario sweeps)."""
    from roofline.serving_api import serve as run_serve

    return run_serve(scenario, overrides, name)


def search_serving(scenario, overrides=(), **options):
    """`roofline plan --serving`: the cheapest deployments (aggregated, disaggregated, tp/cp/dp,
    P:D ratios, method stacks, max_num_seqs) meeting the scenario's serving SLOs at its rate, and
    each one's max sustainable rate: a `ServingPlan` (`roofline.serving_search` lists the options;
    `executor=make_executor(workers, ray_address)` runs the candidates in parallel)."""
    from roofline.serving_search import search_serving as run_search

    return run_search(scenario, overrides, **options)


def make_executor(workers: int | None = None, ray_address: str | None = None):
    """In process (workers 1), a local process pool (default: one process per CPU), or Ray tasks."""
    from roofline.executors import make_executor as make

    return make(workers, ray_address)


def sweep(scenario, overrides=()) -> dict:
    """Column arrays (flattened result keys, e.g. 'prefill.time_s') over the sweep grid."""
    return simulate(scenario, overrides).columns


def attainable_roof(scenario, hw, dtype: str = "bf16") -> tuple:
    """(best GEMM fraction of `dtype`'s peak, HBM streaming fraction, source) that the simulator
    prices `hw`'s ops with under the scenario's calibration: the profile's curves where it has one
    (source: its profile id), else the datasheet efficiencies (source 'datasheet'). The rows are
    `efficiency.profile_row` / `datasheet_row`, the ones `simulate` builds its table from."""
    from roofline.simulator.efficiency import datasheet_row, profile_row

    profile = profiles_for(load_scenario(scenario)).get(hw.name)
    row = profile_row(hw, profile, dtype) if profile else datasheet_row(hw, dtype)
    return float(np.max(row[1])), float(row[0]), row[4]


# The public surface the faces (dashboard, profilers) use besides simulate/load_scenario: the schema
# and methods registry their controls are generated from, the planner, op tables, the count
# functions measurements are reported with, and the model types the PyTorch reference builds from.
# Faces import these from here (or from roofline.report), never from roofline.simulator. The CLI
# also reaches the registries (hardware, models), the did-you-mean helper and file writing here.
from roofline.fileio import check_output, write_atomic  # noqa: E402, F401
from roofline.models import list_models, zoo_index  # noqa: E402, F401
from roofline.simulator.calibration import hill, parse_profile  # noqa: E402, F401
from roofline.simulator.comm import COLLECTIVES, busbw_factor, latency_steps  # noqa: E402, F401
from roofline.simulator.decode_time import kernel_time as decode_kernel_time  # noqa: E402, F401
from roofline.simulator.errors import did_you_mean  # noqa: E402, F401
from roofline.simulator.flops import (  # noqa: E402, F401
    attention_flops,
    flash_kv_hbm_tokens,
    flash_query_block_rows,
    matmul_flops,
    moe_passes,
    prefill_pairs,
    touched_experts,
)
from roofline.simulator.grids import (  # noqa: E402, F401
    GEMM_GRID_FORMATS,
    GRID_AXES,
    GRID_FIELDS,
    M_TILES,
    MAX_CALL_S,
    MAX_SHAPE_SCALE,
    MOE_MIXED_KINDS,
    MOE_SHAPE_KEYS,
    SKEW_NODES,
    Grid,
    gemm_tile_share,
    grid_family,
)
from roofline.simulator.grouped_gemm import share_bits  # noqa: E402, F401
from roofline.simulator.hf_config import from_hf_config  # noqa: E402, F401
from roofline.simulator.methods import REGISTRY, parse_methods  # noqa: E402, F401
from roofline.simulator.methods.base_method import REQUIRED  # noqa: E402, F401
from roofline.simulator.methods.kv_quant import SCALE_BYTES_PER_GROUP  # noqa: E402, F401
from roofline.simulator.model import MLA, Attention, ModelArch, MoEFFN  # noqa: E402, F401
from roofline.simulator.planner import enumerate_layouts, evaluate_layouts, pareto_front  # noqa: E402, F401
from roofline.simulator.results import op_table, without_unfit_figures  # noqa: E402, F401
from roofline.simulator.scenario import flatten  # noqa: E402, F401
from roofline.simulator.serving.config import SERVING_SCHEMA  # noqa: E402, F401
from roofline.simulator.units import (  # noqa: E402, F401
    DTYPE_BYTES,
    GIB,
    TOKEN_COUNT_HELP,
    dtype_bytes,
    is_token_field,
    parse_token_count,
)

FACE_API = [
    "hill", "COLLECTIVES", "busbw_factor", "latency_steps", "attention_flops", "flash_kv_hbm_tokens",
    "flash_query_block_rows", "matmul_flops", "prefill_pairs", "from_hf_config", "REGISTRY", "parse_methods",
    "REQUIRED", "SCALE_BYTES_PER_GROUP", "Attention", "MLA", "ModelArch", "MoEFFN", "enumerate_layouts", "evaluate_layouts",
    "pareto_front", "op_table", "without_unfit_figures", "SCHEMA", "SECTIONS", "flatten", "GIB", "dtype_bytes", "CalibrationError",
    "DTYPE_BYTES", "TOKEN_COUNT_HELP", "is_token_field", "parse_token_count", "did_you_mean", "set_path", "read_scenario_file", "parse_override", "write_atomic", "check_output",
    "list_hardware", "load_hardware", "unknown_name_message", "list_models", "load_model", "zoo_index",
    "SERVING_SCHEMA", "share_bits",
]  # fmt: skip

__all__ = [
    *FACE_API,
    "simulate",
    "sweep",
    "step_model",
    "attainable_roof",
    "serve",
    "search_serving",
    "make_executor",
    "load_scenario",
    "UserError",
    "ScenarioError",
    "HardwareSpecError",
    "ModelConfigError",
]
