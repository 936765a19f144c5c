"""The calibration profile and its partial file as YAML: raw and curve points one per line (a
collective's `table` one line per GPU count), floats to six significant figures, written atomically;
where the partial file and the default profile live.

What goes in the documents is `calibrate_fit.build_profile`'s and `calibrate.calibrate`'s business.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from roofline.fileio import write_atomic


class _Flow(dict):
    """A mapping dumped on one line (raw points, curve points)."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml's emitter where available
    pass


_Dumper.add_representer(
    _Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def _represent_float(dumper, value: float):
    """Six significant figures, always readable back as a float (YAML 1.1 floats need a dot)."""
    if value != value or value in (float("inf"), float("-inf")):
        return dumper.represent_float(value)
    text = f"{value:.6g}"
    if "." not in text:
        mantissa, e, exp = text.partition("e")
        text = f"{mantissa}.0{e}{exp}"
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(float, _represent_float)


class _FlowList(list):
    """A list of numbers dumped on one line (a grid's values)."""


_Dumper.add_representer(
    _FlowList, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def _flow_points(points: list) -> list:
    return [_Flow(p) for p in points]


def dump_yaml(doc: dict) -> str:
    def conv(node, key=None):
        if key == "table" and isinstance(node, dict):  # a collective's table: one line per GPU count
            return {k: _Flow(v) if isinstance(v, dict) else conv(v) for k, v in node.items()}
        if isinstance(node, dict):
            return {k: conv(v, k) for k, v in node.items()}
        if isinstance(node, list) and node and all(isinstance(p, dict) for p in node):
            return _flow_points(node)
        if isinstance(node, list) and len(node) > 3 and all(isinstance(p, (int, float)) for p in node):
            return _FlowList(node)
        return node

    return yaml.dump(conv(doc), Dumper=_Dumper, sort_keys=False, width=200, allow_unicode=True)


def write_yaml_atomic(doc: dict, path: Path) -> None:
    """The profile as YAML, written atomically (roofline.fileio.write_atomic)."""
    write_atomic(path, dump_yaml(doc))


def partial_path(out: Path) -> Path:
    out = Path(out)
    stem = out.name[: -len(out.suffix)] if out.suffix in (".yaml", ".yml") else out.name
    return out.with_name(f"{stem}.partial.yaml")


def default_out(hardware: str) -> Path:
    from roofline.hwspecs import calibration_dir

    return calibration_dir() / f"{hardware}.yaml"
