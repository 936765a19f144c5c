"""Plan values <-> a scenario mapping that `roofline.simulate` accepts, and the YAML the Plan page
exports and imports. Model references are checked by `model_refs` before a scenario is validated.
"""

from __future__ import annotations

import yaml

from roofline.api import REGISTRY, flatten
from roofline.dashboards.model_refs import UPLOAD_PREFIX, model_ref_problem, resolve_model, upload_ref
from roofline.dashboards.state import DEFAULTS, FIELD_PATHS, full_method, gpus_of, is_model_param, suggested


def to_scenario(values: dict, upload_dir=None) -> dict:
    """The scenario mapping that `roofline.simulate` accepts (and `export_yaml` writes)."""
    doc: dict = {"name": values.get("name") or DEFAULTS["name"]}
    doc["model"] = resolve_model(values["model"], upload_dir)
    doc["hardware"] = values["hardware"]
    doc["gpus"] = gpus_of(values)
    for section in ("parallelism", "dtype", "workload"):
        doc[section] = {}
    methods = []
    for spec in values.get("methods") or []:
        spec = dict(spec)
        for k, v in spec.items():
            if k != "name" and spec["name"] in REGISTRY and k in REGISTRY[spec["name"]].params:
                if is_model_param(spec["name"], k):
                    spec[k] = resolve_model(v, upload_dir)
        methods.append(spec)
    doc["methods"] = methods
    for path in FIELD_PATHS:
        if path in ("name", "model", "hardware"):
            continue
        value = values.get(path, DEFAULTS.get(path))
        if "." in path:
            section, key = path.split(".", 1)
            doc.setdefault(section, {})[key] = value
        else:
            doc[path] = value
    return doc


def reference_problems(doc: dict, catalog: dict, upload_dir=None) -> list:
    """Model references in an uploaded scenario that the dashboard will not open: anything but a
    zoo name, 'self' (draft models) or a config uploaded to this dashboard. Checked before the
    scenario is validated, so a scenario can never make the server read another file."""
    zoo = catalog["model"]
    problems = []
    model = doc.get("model")
    if model is not None:
        problem = model_ref_problem(upload_ref(model, upload_dir), "model", zoo, upload_dir)
        if problem:
            problems.append(problem)
    methods = doc.get("methods")
    for i, spec in enumerate(methods if isinstance(methods, list) else []):
        if not isinstance(spec, dict) or spec.get("name") not in REGISTRY:
            continue
        for k, v in spec.items():
            if k in REGISTRY[spec["name"]].params and is_model_param(spec["name"], k) and v != "self":
                problem = model_ref_problem(upload_ref(v, upload_dir), f"methods[{i}].{k}", zoo, upload_dir)
                if problem:
                    problems.append(problem)
    calibration = doc.get("calibration")
    if calibration is not None and "calibration" in catalog and calibration not in catalog["calibration"]:
        problems.append(
            f"calibration: {str(calibration)[:60]!r}: the dashboard uses auto, datasheet or a profile in its "
            "calibration folder (see the Calibration page)"
        )
    sweep = doc.get("sweep")
    if isinstance(sweep, dict) and "model" in sweep:
        swept = sweep["model"] if isinstance(sweep["model"], list) else [sweep["model"]]
        for v in swept:
            problem = model_ref_problem(upload_ref(v, upload_dir), "sweep.model", zoo, upload_dir)
            if problem:
                problems.append(problem)
    return problems


def from_scenario(doc: dict, catalog: dict, upload_dir=None) -> tuple:
    """(values, notices) from a scenario mapping that `roofline.load_scenario` accepted.

    A sweep is dropped (the Plan page shows one point) with a notice; models must be zoo names or
    configs uploaded to this dashboard."""
    notices: list = []
    flat = flatten({k: v for k, v in doc.items() if k not in ("methods", "sweep")}, "scenario", notices)
    values = dict(DEFAULTS)
    values.update({k: v for k, v in flat.items() if k in FIELD_PATHS})
    values["name"] = flat.get("name") or DEFAULTS["name"]
    values["model"] = upload_ref(values["model"], upload_dir)
    zoo = catalog["model"]
    problem = model_ref_problem(values["model"], "model", zoo, upload_dir)
    if problem:
        notices.append(problem)
        values["model"] = DEFAULTS["model"]
    if doc.get("sweep"):
        notices.append(
            "sweep: ignored; the Plan page shows one point (axes: "
            + ", ".join(doc["sweep"])
            + "). Use the Compare page or `roofline simulate` for sweeps"
        )
    methods = []
    for spec in doc.get("methods") or []:
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        for k in list(spec):
            if k != "name" and is_model_param(spec["name"], k):
                spec[k] = upload_ref(spec[k], upload_dir)
                if spec[k] != "self":
                    problem = model_ref_problem(spec[k], f"methods: {spec['name']}.{k}", zoo, upload_dir)
                    if problem:
                        notices.append(problem)
                        spec[k] = suggested(spec["name"], k)
        methods.append(full_method(spec))
    order = list(REGISTRY)
    values["methods"] = sorted(methods, key=lambda m: order.index(m["name"]))
    return values, notices


def export_yaml(values: dict, upload_dir=None) -> str:
    """A scenario file that `roofline simulate` reproduces exactly (uploaded configs are named by
    their path on this server)."""
    doc = to_scenario(values, upload_dir)
    header = "# Exported by the roofline dashboard; run it with `roofline simulate THIS_FILE`.\n"
    if str(values.get("model", "")).startswith(UPLOAD_PREFIX):
        header += "# model: the config.json uploaded to the dashboard, as stored on its server.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
