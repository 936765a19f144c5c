"""Seeded generators of bad (and good) input for the fuzz harness: scenario YAML, config.json files,
calibration profiles, odd paths and CLI command lines.

`make_case(seed, workdir)` builds one `Case` from a seed alone (the same seed always gives the same
case), writing the files it needs under `workdir`. What runs a case and judges its outcome is
`fuzz_harness.py`; the quick CI slice is `test_fuzz_quick.py`, the long run `run.py`.
"""

from __future__ import annotations

import copy
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import roofline.hwspecs as hwspecs
from roofline.api import REGISTRY, SCHEMA, list_hardware, list_models, zoo_index

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
ZOO = ROOT / "models" / "zoo"

# Values that replace a field's value: wrong types, extremes, non-finite, unicode, huge.
ODD_VALUES = [
    None, True, False, 0, -1, 1, 2, 3, 7, 1.5, -0.0, 1e-300, 1e300, 1e9, 10**30, 2**63, -(2**63),
    float("nan"), float("inf"), float("-inf"), "", "auto", "x" * 5000, "ünïcödé ✓ 🚀", "\x00\x07",
    "../../etc/passwd", "-1", "1e9", [], [1, 2], {}, {"a": 1}, [[[[[]]]]], "<img src=x onerror=alert(7)>",
]  # fmt: skip
BIG_INTS = [0, -1, 1, 2, 3, 5, 7, 8, 16, 64, 1000, 10**5, 10**6, 10**8, 10**9, 10**12, 2**62, 10**30]
SHIPPED_SHARE = 0.2  # of scenario cases without a calibration of their own: `auto` on the shipped profiles
LAYOUT_VALUES = [1, 1, 1, 2, 2, 3, 4, 5, 7, 8, 16, 32, 64, 128, 1024, 10**6]
CONFIG_SIZE_FIELDS = [
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "vocab_size", "max_position_embeddings", "num_local_experts", "num_experts_per_tok",
    "n_routed_experts", "moe_intermediate_size", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
    "qk_nope_head_dim", "v_head_dim", "sliding_window", "num_experts", "first_k_dense_replace",
]  # fmt: skip


@dataclass
class Case:
    """One fuzz input: either an API call on a scenario (`doc` or a `path`) or a CLI `argv`."""

    seed: int
    kind: str  # "api" | "cli"
    what: str  # short label of the mutations applied, for reports
    doc: object = None
    path: str | None = None
    argv: list = field(default_factory=list)
    auto_profiles: str | None = None  # a folder to use as hwspecs/calibration for `calibration: auto`


def _base_docs() -> list:
    docs = []
    for p in SCENARIOS:
        with open(p) as fh:
            docs.append(yaml.safe_load(fh))
    docs.append({"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 4096}})
    return docs


_BASES = None


def bases() -> list:
    global _BASES
    if _BASES is None:
        _BASES = _base_docs()
    return _BASES


def _paths(doc, prefix=()):
    """Every (path tuple) of a nested mapping/list, for picking a place to mutate."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _parent(doc, path):
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


def _odd_value(rng: random.Random):
    r = rng.random()
    if r < 0.5:
        return rng.choice(ODD_VALUES)
    if r < 0.8:
        return rng.choice(BIG_INTS)
    return rng.choice([rng.uniform(-10, 10), 10 ** rng.uniform(-30, 30), rng.randint(-(10**6), 10**6)])


def mutate_tree(doc, rng: random.Random, n: int, labels: list):
    """Apply n random deletions / type swaps / extreme values / unknown keys to a nested document."""
    for _ in range(n):
        paths = _paths(doc)
        if not paths or not isinstance(doc, dict):
            break
        path = rng.choice(paths)
        parent = _parent(doc, path)
        op = rng.random()
        if op < 0.25:
            labels.append("delete")
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent.pop(path[-1])
        elif op < 0.8:
            labels.append("swap")
            parent[path[-1]] = copy.deepcopy(_odd_value(rng))  # fresh: a shared value could nest in itself
        elif op < 0.9 and isinstance(parent, dict):
            labels.append("unknown-key")
            parent[rng.choice(["bogus", "ünï", "x" * 300, "methods", "sweep", "1", "__class__"])] = (
                copy.deepcopy(_odd_value(rng))
            )
        else:
            labels.append("duplicate")
            parent[path[-1]] = copy.deepcopy(parent[path[-1]]) if not isinstance(parent, list) else 0
    return doc


def random_method(rng: random.Random, labels: list) -> dict:
    if rng.random() < 0.08:
        labels.append("unknown-method")
        return {"name": rng.choice(["kv_quantt", "", "ünï", 5, None, "x" * 1000])}
    name = rng.choice(list(REGISTRY))
    spec = {"name": name}
    for key, p in REGISTRY[name].params.items():
        if rng.random() < 0.15:
            continue
        if p.choices and rng.random() < 0.7:
            spec[key] = rng.choice(p.choices)
        elif p.kind == "int":
            spec[key] = rng.choice([1, 4, 16, 128, 1024, 4096, 65536] + BIG_INTS)
        elif p.kind == "float":
            lo = p.minimum if p.minimum is not None else 0.0
            hi = p.maximum if p.maximum is not None else 10.0
            spec[key] = rng.choice([lo, hi, rng.uniform(lo, hi), _odd_value(rng)])
        elif p.kind == "bool":
            spec[key] = rng.random() < 0.5
        elif p.kind == "str":
            spec[key] = rng.choice(["self", "llama-68m", "llama-3.2-1b", "nope", "/dev/zero"])
        if rng.random() < 0.1:
            spec[key] = _odd_value(rng)
    if rng.random() < 0.05:
        spec["bogus_param"] = 1
    return spec


def mutate_methods(doc: dict, rng: random.Random, labels: list) -> None:
    r = rng.random()
    if r < 0.05:
        labels.append("huge-method-list")
        doc["methods"] = [{"name": "kv_quant", "bits": 8}] * rng.choice([1000, 10_000])
    elif r < 0.1:
        labels.append("methods-not-list")
        doc["methods"] = _odd_value(rng)
    else:
        labels.append("methods")
        doc["methods"] = [random_method(rng, labels) for _ in range(rng.choice([1, 1, 2, 3, 5]))]


def mutate_sweep(doc: dict, rng: random.Random, labels: list) -> None:
    sweepable = [p for p, s in SCHEMA.items() if s.sweepable]
    sweep = {}
    kind = rng.random()
    if kind < 0.1:
        labels.append("huge-sweep")
        sweep["workload.prompt_tokens"] = list(range(1024, 1024 + rng.choice([2000, 5000, 20_000])))
        if rng.random() < 0.5:
            sweep["workload.batch"] = list(range(1, rng.choice([10, 100, 400])))
    elif kind < 0.2:
        labels.append("many-groups")
        sweep["parallelism.tp"] = [1, 2, 4, 8][: rng.randint(1, 4)]
        sweep["dtype.kv"] = ["bf16", "fp8", "int8", "int4"][: rng.randint(1, 4)]
        sweep["dtype.weights"] = ["bf16", "fp8", "int8", "int4"][: rng.randint(1, 4)]
        sweep["parallelism.pp"] = [1, 2, 4][: rng.randint(1, 3)]
        sweep["model"] = rng.sample(list_models(), rng.randint(1, 6))
    else:
        labels.append("sweep")
        for path in rng.sample(sweepable, rng.randint(1, 3)):
            spec = SCHEMA[path]
            if path == "model":
                values = rng.sample(list_models(), 2)
            elif path == "hardware":
                values = rng.sample(list_hardware(), rng.randint(1, 4))
            elif spec.choices:
                values = rng.sample(list(spec.choices), min(2, len(spec.choices)))
            elif spec.kind == "int":
                values = [rng.choice(LAYOUT_VALUES if path.startswith("parallelism") else BIG_INTS)]
                values.append(rng.choice([1, 2, 8, 1024, 8192, 131072]))
            else:
                values = [_odd_value(rng) for _ in range(2)]
            if rng.random() < 0.15:
                values = _odd_value(rng)
            sweep[path] = values
    doc["sweep"] = sweep


def mutate_layout(doc: dict, rng: random.Random, labels: list) -> None:
    labels.append("layout")
    par = doc.setdefault("parallelism", {}) if isinstance(doc.get("parallelism", {}), dict) else {}
    for key in rng.sample(["tp", "pp", "cp", "dp", "ep"], rng.randint(1, 3)):
        par[key] = rng.choice(LAYOUT_VALUES)
    if rng.random() < 0.5:
        par["cp_variant"] = rng.choice(["pass-kv", "pass-q", "ulysses"])
    doc["gpus"] = None
    if rng.random() < 0.5:
        wl = doc.setdefault("workload", {}) if isinstance(doc.get("workload", {}), dict) else {}
        wl["prefill_chunk_tokens"] = rng.choice([None, 1, 7, 512, 8192, 8193, 10**6])
        wl["prompt_tokens"] = rng.choice([1, 2, 100, 8192, 8193, 131072, 10**6, 10**9])


def mutate_config(rng: random.Random, labels: list) -> dict:
    """A zoo config.json, mutated: deletions, type swaps, absurd sizes, nonsense shapes."""
    entry = zoo_index()[rng.choice(list_models())]
    cfg = json.loads((ZOO / entry["config"]).read_text())
    r = rng.random()
    if r < 0.3:
        labels.append("config-absurd-size")
        key = rng.choice(CONFIG_SIZE_FIELDS)
        cfg[key] = rng.choice([10**8, 10**9, 10**12, 2**62, 1e9, 10**30, 0, -1])
    elif r < 0.4:
        labels.append("config-nonsense")
        h = cfg.get("hidden_size") if isinstance(cfg.get("hidden_size"), int) else 4096
        cfg["num_attention_heads"] = rng.choice([h + 1, h * 4, 3])
        cfg.pop("head_dim", None)
        if rng.random() < 0.5:
            cfg["head_dim"] = rng.choice([0, 1, 3, 10**6])
    else:
        labels.append("config-mutated")
        mutate_tree(cfg, rng, rng.randint(1, 4), labels)
    return cfg


def valid_profile(hardware: str = "h100-sxm") -> dict:
    return {
        "profile_id": f"{hardware}-fuzz",
        "hardware": hardware,
        "provenance": {"device": "synthetic (fuzz)", "date": "2026-01-01"},
        "kernel_overhead_s": 5e-6,
        "curves": {
            "hbm": {
                "fit": {"e_max": 0.8, "x_half": 1e3, "p": 1.0},
                "points": [{"x": 1e6, "efficiency": 0.8}, {"x": 1e9, "efficiency": 0.8}],
            },
            "gemm_bf16": {
                "fit": {"e_max": 0.7, "x_half": 512.0, "p": 1.5},
                "points": [{"x": 256.0, "efficiency": 0.3}, {"x": 8192.0, "efficiency": 0.7}],
            },
            "attention_prefill": {
                "fit": {"e_max": 0.5, "x_half": 2048.0, "p": 2.0},
                "points": [{"x": 1024.0, "efficiency": 0.1}, {"x": 32768.0, "efficiency": 0.5}],
            },
        },
        "fractions": {"score_kernel": 0.35},
        "collectives": {"nvlink": {"ops": {"all_reduce": {"fit": {"alpha_s": 5e-6, "beta_Bps": 3e11}}}}},
    }


def profile_text(rng: random.Random, hardware: str, labels: list) -> str:
    prof = valid_profile(hardware)
    r = rng.random()
    if r < 0.15:
        labels.append("profile-truncated")
        text = yaml.safe_dump(prof)
        return text[: rng.randint(0, len(text))]
    if r < 0.3:
        labels.append("profile-negative")
        where = rng.choice(["kernel_overhead_s", "x_half", "p", "x", "e_max", "alpha"])
        if where == "kernel_overhead_s":
            prof["kernel_overhead_s"] = rng.choice([-1, 1e300, 0, 1e-300, 3600])
        elif where == "alpha":
            prof["collectives"]["nvlink"]["ops"]["all_reduce"]["fit"]["alpha_s"] = rng.choice([-1, 1e300])
        else:
            curve = prof["curves"][rng.choice(list(prof["curves"]))]
            target = curve["points"][0] if where == "x" else curve["fit"]
            target[where] = rng.choice([-1.0, -2048.0, 0.0, 1e300, -1e300, 1e-300])
        return yaml.safe_dump(prof)
    if r < 0.4:
        labels.append("profile-not-mapping")
        key = rng.choice(["curves", "fractions", "collectives", "provenance"])
        prof[key] = rng.choice([[1, 2], "text", 5, [{"a": 1}]])
        if key == "curves" and rng.random() < 0.5:
            prof["curves"] = {"hbm": rng.choice([[1], "x", {"fit": [1, 2]}, {"fit": {}, "points": "x"}])}
        if key == "collectives" and rng.random() < 0.5:
            prof["collectives"] = {
                "nvlink": rng.choice([[1], "x", {"ops": [1]}, {"ops": {"all_reduce": [1]}}])
            }
        return yaml.safe_dump(prof)
    labels.append("profile-mutated")
    return yaml.safe_dump(mutate_tree(prof, rng, rng.randint(1, 4), labels), allow_unicode=True)


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]")
    lines.append(f"model: *a{levels - 1}")
    lines.append("hardware: h100-sxm")
    return "\n".join(lines) + "\n"


def odd_path(rng: random.Random, workdir: Path, labels: list) -> str:
    """A FIFO, a device, a dangling link, a link loop, a folder, or nothing at all."""
    kind = rng.choice(["fifo", "device", "dangling", "loop", "dir", "missing", "dev-link"])
    labels.append(f"path-{kind}")
    p = workdir / f"odd-{kind}.json"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "device":
        return "/dev/zero"
    elif kind == "dev-link":
        os.symlink("/dev/zero", p)
    elif kind == "dangling":
        os.symlink(workdir / "nowhere.json", p)
    elif kind == "loop":
        os.symlink(workdir / "odd-loop2.json", p)
        os.symlink(p, workdir / "odd-loop2.json")
    elif kind == "dir":
        p.mkdir()
    return str(p)


def yaml_text_mutation(text: str, rng: random.Random, labels: list) -> str:
    r = rng.random()
    if r < 0.2:
        labels.append("alias-bomb")
        return alias_bomb(rng.choice([3, 5, 8, 9]))
    if r < 0.4:
        labels.append("truncated")
        return text[: rng.randint(0, len(text))]
    if r < 0.6:
        labels.append("byte-flip")
        chars = list(text)
        for _ in range(rng.randint(1, 10)):
            if chars:
                chars[rng.randrange(len(chars))] = rng.choice(
                    ["\t", ":", "{", "&", "*", "!", "ü", "\n", "-", "'"]
                )
        return "".join(chars)
    if r < 0.7:
        labels.append("python-tag")
        return text + "\nexploit: !!python/object/apply:os.system ['true']\n"
    if r < 0.8:
        labels.append("deep-nesting")
        return "model: " + "[" * 5000 + "]" * 5000 + "\nhardware: h100-sxm\n"
    labels.append("big-doc")
    return text + "\n" + "".join(f"k{i}: {i}\n" for i in range(rng.choice([100, 20000])))


def _dump(doc) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    except Exception:
        return repr(doc)


def make_case(seed: int, workdir: Path) -> Case:
    """One reproducible case; its files are written under workdir (a fresh folder per case)."""
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    labels: list = []
    doc = copy.deepcopy(rng.choice(bases()))
    roll = rng.random()
    case = Case(seed, "api", "")
    if roll < 0.25:
        mutate_tree(doc, rng, rng.randint(1, 3), labels)
    elif roll < 0.37:
        mutate_methods(doc, rng, labels)
    elif roll < 0.47:
        mutate_sweep(doc, rng, labels)
    elif roll < 0.57:
        mutate_layout(doc, rng, labels)
    elif roll < 0.70:
        cfg_path = workdir / "config.json"
        if rng.random() < 0.85:
            cfg = mutate_config(rng, labels)
            cfg_path.write_text(
                json.dumps(cfg) if rng.random() < 0.9 else json.dumps(cfg)[: rng.randint(0, 200)]
            )
            doc["model"] = str(cfg_path)
        else:
            doc["model"] = odd_path(rng, workdir, labels)
        doc.pop("sweep", None) if isinstance(doc.get("sweep"), dict) and "model" in doc["sweep"] else None
        if rng.random() < 0.3:
            mutate_layout(doc, rng, labels)
    elif roll < 0.80:
        hw = doc.get("hardware") if isinstance(doc.get("hardware"), str) else "h100-sxm"
        doc.pop("sweep", None)
        text = profile_text(rng, hw, labels)
        if rng.random() < 0.5:
            prof_dir = workdir / "calibration"
            prof_dir.mkdir()
            (prof_dir / f"{hw}.yaml").write_text(text)
            doc["calibration"] = "auto"
            case.auto_profiles = str(prof_dir)
        elif rng.random() < 0.8:
            (workdir / "profile.yaml").write_text(text)
            doc["calibration"] = str(workdir / "profile.yaml")
        else:
            doc["calibration"] = odd_path(rng, workdir, labels)
    elif roll < 0.88:
        text = yaml_text_mutation(_dump(doc), rng, labels)
        p = workdir / "scenario.yaml"
        p.write_text(text)
        case.path = str(p)
    else:
        case.kind = "cli"
        case.argv = cli_argv(rng, doc, workdir, labels)
    if (
        case.kind == "api"
        and not case.path
        and isinstance(doc, dict)
        and "calibration" not in doc
        and rng.random() < SHIPPED_SHARE
    ):
        # the profiles the package ships: measured grids take paths the datasheet model never does
        # (sweeps over cp, hardware or pp on them once crashed or priced points apart wrongly)
        doc["calibration"] = "auto"
        case.auto_profiles = str(hwspecs.CALIBRATION_DIR)
        labels.append("shipped-profiles")
    case.doc = doc
    case.what = "+".join(sorted(set(labels))) or "unchanged"
    return case


def cli_argv(rng: random.Random, doc: dict, workdir: Path, labels: list) -> list:
    """A command line: a subcommand with random flags, overrides and output targets."""
    scenario = workdir / "scenario.yaml"
    scenario.write_text(_dump(doc))
    cmd = rng.choice(["simulate", "simulate", "simulate", "compare", "plan", "hw", "models", "methods"])
    labels.append(f"cli-{cmd}")
    if cmd in ("hw", "models"):
        return [
            cmd,
            rng.choice(["list", "show"]),
            rng.choice(["h100-sxm", "llama-3.1-8b", "x" * 300, "ü", ""]),
        ]
    if cmd == "methods":
        return [cmd] + rng.choice([[], ["quest"], ["nope"], ["x" * 5000]])
    argv = [cmd, str(scenario)]
    for _ in range(rng.choice([0, 1, 1, 2, 4])):
        path = rng.choice(list(SCHEMA) + ["bogus", "workload", "methods", "x" * 200])
        value = rng.choice(["8", "-1", "1e9", ".nan", "[1,2]", "{", "ü", "null", "true", "&a [*a]", "h200"])
        argv += ["--set", f"{path}={value}"]
    if cmd == "simulate":
        if rng.random() < 0.5:
            argv += ["--format", rng.choice(["table", "json", "csv", "xml"])]
        if rng.random() < 0.3:
            argv += ["--point", rng.choice(["0", "-1", "5", "10**9", "x"])]
        if rng.random() < 0.4:
            flag = rng.choice(["-o", "--plot"])
            target = rng.choice(["self", "fifo", "link", "dir", "plain", "hardlink", "devlink", "deep"])
            labels.append(f"out-{target}")
            out = workdir / "out.txt"
            if target == "self":
                out = scenario
            elif target == "fifo":
                os.mkfifo(out)
            elif target == "link":
                (workdir / "linked.txt").write_text("keep me\n")
                os.symlink(workdir / "linked.txt", out)
            elif target == "devlink":
                os.symlink("/dev/null", out)
            elif target == "dir":
                out = workdir
            elif target == "hardlink":
                (workdir / "original.txt").write_text("keep me\n")
                os.link(workdir / "original.txt", out)
            elif target == "deep":
                out = workdir / "a" / "b" / "c.txt"
            argv += [flag, str(out)]
    if cmd == "compare":
        argv += ["--methods", rng.choice(["dense,kv_quant", "nope", "+", ",".join(["kv_quant"] * 500), "ü"])]
    if cmd == "plan":
        argv += ["--gpus-max", rng.choice(["1", "8", "16", "100000", "-1"])]
    return argv
