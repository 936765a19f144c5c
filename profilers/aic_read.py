"""Read AIConfigurator's measured kernel tables (PyPI `aiconfigurator-core`, Apache-2.0).

The package ships kernel latencies measured on real GPUs under
`aiconfigurator_core/systems/data/<gpu>/<op>/<framework>/<version>/<table>.parquet` (a `.csv` with the
same columns is read too). This module finds that folder (the installed package, found without
importing it, or `--data DIR` with the same layout), maps its GPU folder names to our hwspecs SKUs,
picks the newest version of a framework that has a table, and returns the table as columns with its
provenance. Units as the tables store them: `latency` in milliseconds, `message_size` in elements
(an int8 all-reduce takes 0.65x the time of a half one of equal message_size; of equal bytes, about
the same), GEMM shapes as m, n, k of `torch.nn.functional.linear`.

Only facts (the measured numbers and their labels) are read; no code of the package is imported or
copied. pyarrow is the only dependency (`pip install -e '.[aic]'`), imported when a table is read,
never on the planning path. Turning rows into efficiency points is `aic_points`' job.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roofline.api import UserError

PACKAGE = "aiconfigurator-core"
INSTALL_HINT = "pip install -e '.[aic]'"
# AIConfigurator GPU folder -> hwspecs SKU, checked against each table's `device` column. Folders
# without a SKU of ours (a30, and b60: Intel's Arc Pro B60 on oneCCL) are not imported.
GPUS = {
    "h100_sxm": "h100-sxm",
    "h200_sxm": "h200",
    "b200_sxm": "b200",
    "gb200": "gb200",
    "b300_sxm": "b300",
    "gb300": "gb300",
    "rtx_pro_6000_server": "rtx-pro-6000-server",
    "a100_sxm": "a100-80gb-sxm",
    "a100_pcie": "a100-80gb-pcie",
    "h100_pcie": "h100-pcie",
    "l40s": "l40s",
    "l4": "l4",
}
FRAMEWORKS = ("vllm", "sglang", "trtllm")
# Their dtype labels -> ours (simulator.units.DTYPE_BYTES names); fp8_block is fp8 with 128-wide
# block scales, nvfp4 fp4 with 16-wide fp8 block scales.
DTYPES = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "fp8": "fp8",
    "fp8_block": "fp8_block",
    "nvfp4": "fp4",
    "int8": "int8",
    "float32": "fp32",
}


@dataclass(frozen=True)
class TableSpec:
    op: str  # folder under <gpu>/
    stem: str  # file name without suffix
    columns: tuple  # required
    optional: tuple = ()
    framework: str | None = None  # a fixed framework folder (NCCL's tables live under comm/nccl/)


TABLES = {
    "gemm": TableSpec("gemm", "gemm_perf", ("gemm_dtype", "m", "n", "k", "latency"), ("kernel_source",)),
    "context_attention": TableSpec(
        "attention",
        "context_attention_perf",
        ("batch_size", "isl", "num_heads", "num_key_value_heads", "head_dim", "latency"),
        ("attn_dtype", "kv_cache_dtype", "window_size", "kernel_source"),
    ),
    "generation_attention": TableSpec(
        "attention",
        "generation_attention_perf",
        ("batch_size", "step", "num_heads", "num_key_value_heads", "head_dim", "latency"),
        ("attn_dtype", "kv_cache_dtype", "window_size", "kernel_source"),
    ),
    "nccl": TableSpec(
        "comm",
        "nccl_perf",
        ("op_name", "nccl_dtype", "num_gpus", "message_size", "latency"),
        framework="nccl",
    ),
    "moe": TableSpec(
        "moe",
        "moe_perf",
        (
            "moe_dtype",
            "num_tokens",
            "hidden_size",
            "inter_size",
            "topk",
            "num_experts",
            "moe_tp_size",
            "moe_ep_size",
            "distribution",
            "latency",
        ),
        ("kernel_source",),
    ),
    "custom_allreduce": TableSpec(
        "comm",
        "custom_allreduce_perf",
        ("allreduce_dtype", "num_gpus", "message_size", "latency"),
        ("backend", "kernel_source"),
    ),
    # DeepSeek-V3 MLA attention alone (SGLang, TensorRT-LLM; profilers/aic_mla.py); num_heads per GPU
    "context_mla": TableSpec(
        "mla",
        "context_mla_perf",
        ("batch_size", "isl", "num_heads", "latency"),
        ("mla_dtype", "kv_cache_dtype", "kernel_source"),
    ),
    "generation_mla": TableSpec(
        "mla",
        "generation_mla_perf",
        ("batch_size", "step", "num_heads", "latency"),
        ("isl", "mla_dtype", "kv_cache_dtype", "kernel_source"),
    ),
}
SUFFIXES = (".parquet", ".csv")
NUMERIC = {c for spec in TABLES.values() for c in spec.columns + spec.optional} - {
    "gemm_dtype",
    "kernel_source",
    "attn_dtype",
    "kv_cache_dtype",
    "op_name",
    "nccl_dtype",
    "allreduce_dtype",
    "backend",
    "moe_dtype",
    "distribution",
    "mla_dtype",
}


class AicDataError(UserError):
    """AIConfigurator data that cannot be found or read; the message is one line naming the file."""


@dataclass(frozen=True)
class Source:
    """Where the tables come from: the data folder and the package (name, version) it belongs to."""

    root: Path
    package: str
    version: str


@dataclass(frozen=True)
class Table:
    name: str
    path: Path
    framework: str  # the folder's framework (nccl for NCCL's tables)
    version: str  # the folder's framework version
    device: str  # the `device` column: the GPU it was measured on
    columns: dict = field(default_factory=dict)  # name -> numpy array, one entry per row
    dropped: int = 0  # rows without a positive, finite latency

    def __len__(self) -> int:
        return len(self.columns["latency"])

    def select(self, mask) -> Table:
        """The rows where `mask` is true (a boolean array), same provenance."""
        mask = np.asarray(mask, dtype=bool)
        return Table(
            self.name,
            self.path,
            self.framework,
            self.version,
            self.device,
            {k: v[mask] for k, v in self.columns.items()},
            self.dropped,
        )

    def provenance(self) -> dict:
        return {
            "table": self.path.name,
            "framework": self.framework,
            "framework_version": self.version,
            "device": self.device,
            "rows": len(self),
        }


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.csv
        import pyarrow.parquet
    except ImportError:
        raise AicDataError(f"reading AIConfigurator tables needs pyarrow: {INSTALL_HINT}") from None
    return pyarrow


def _dist_version(package_dir: Path) -> str | None:
    """The version of the wheel a data folder came from, from a `*.dist-info` beside the package."""
    for info in sorted(package_dir.parent.glob("aiconfigurator_core-*.dist-info")):
        return info.name.removeprefix("aiconfigurator_core-").removesuffix(".dist-info")
    return None


def find_source(data: str | Path | None = None) -> Source:
    """The data folder: `data` (same layout as the package's systems/data), else the installed package."""
    if data is not None:
        root = Path(data)
        if not root.is_dir():
            raise AicDataError(f"--data {data}: no such folder (expected <gpu>/<op>/<framework>/<version>/)")
        package_dir = root.parent.parent if root.name == "data" else root
        version = _dist_version(package_dir) if package_dir.name == "aiconfigurator_core" else None
        return Source(root, PACKAGE if version else f"data folder {root}", version or "unknown")
    spec = importlib.util.find_spec("aiconfigurator_core")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise AicDataError(f"{PACKAGE} is not installed: {INSTALL_HINT} (or pass --data DIR)")
    root = Path(next(iter(spec.submodule_search_locations))) / "systems" / "data"
    if not root.is_dir():
        raise AicDataError(f"{root}: {PACKAGE} is installed but ships no systems/data folder")
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Source(root, PACKAGE, version)


def resolve_gpu(name: str, available=None) -> tuple:
    """(their folder name, our SKU) for either spelling: `h100-sxm` or `h100_sxm`. The error names
    `available` (the SKUs the data has tables for, available_gpus) where given, else every SKU a
    folder name maps to."""
    if name in GPUS:
        return name, GPUS[name]
    for folder, sku in GPUS.items():
        if sku == name:
            return folder, sku
    valid = ", ".join(available if available is not None else sorted(set(GPUS.values())))
    raise AicDataError(f"--gpu {name}: no AIConfigurator data maps to it; valid: {valid or 'none'}")


def available_gpus(source: Source, framework: str) -> list:
    """Our SKUs the data has a `framework` table for, in GPUS order."""
    return [
        sku
        for folder, sku in GPUS.items()
        if any(table_path(source, folder, name, framework) for name in TABLES if not TABLES[name].framework)
    ]


def version_key(text: str) -> tuple:
    """Sort key of a version folder name (0.5.6.post2 < 0.5.14; 1.3.0rc11 < 1.3.0rc20 < 1.3.0)."""
    try:
        from packaging.version import InvalidVersion, Version

        try:
            return (1, Version(text))
        except InvalidVersion:
            pass
    except ImportError:
        pass
    return (0, tuple(int(p) if p.isdigit() else -1 for p in re.findall(r"\d+|[a-z]+", text.lower())))


def table_path(
    source: Source, gpu_folder: str, name: str, framework: str, prefer: str | None = None
) -> Path | None:
    """The file of table `name` for this GPU and framework from version `prefer` where that version
    has it, else from the newest version that does; None where no version has it."""
    spec = TABLES[name]
    base = source.root / gpu_folder / spec.op / (spec.framework or framework)
    if not base.is_dir():
        return None
    candidates = []
    for folder in base.iterdir():
        for suffix in SUFFIXES:
            path = folder / f"{spec.stem}{suffix}"
            if path.is_file():
                candidates.append(path)
                break
    if not candidates:
        return None
    preferred = [p for p in candidates if p.parent.name == prefer]
    return preferred[0] if preferred else max(candidates, key=lambda p: version_key(p.parent.name))


def _numeric(values, path: Path, column: str) -> np.ndarray:
    try:
        return np.asarray([np.nan if v is None else v for v in values], dtype=float)
    except (TypeError, ValueError):
        raise AicDataError(f"{path}: column {column!r} is not numeric") from None


def read_table(path: Path, name: str) -> Table:
    """One table as columns (numeric ones as float arrays, labels as str arrays)."""
    pa = _pyarrow()
    spec = TABLES[name]
    try:
        if path.suffix == ".csv":
            data = pa.csv.read_csv(path)
        else:
            data = pa.parquet.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise AicDataError(
            f"{path}: unreadable as {path.suffix[1:]} ({str(exc).splitlines()[0][:160]})"
        ) from None
    missing = [c for c in spec.columns if c not in data.column_names]
    if missing:
        raise AicDataError(
            f"{path}: missing column(s) {', '.join(missing)}; a {name} table has {', '.join(spec.columns)}"
        )
    cols = {}
    for column in spec.columns + spec.optional:
        if column not in data.column_names:
            continue
        values = data.column(column).to_pylist()
        if column in NUMERIC:
            cols[column] = _numeric(values, path, column)
        else:
            cols[column] = np.asarray(["" if v is None else str(v) for v in values], dtype=object)
    ok = np.isfinite(cols["latency"]) & (cols["latency"] > 0)
    if not ok.any():
        raise AicDataError(f"{path}: no row has a positive, finite latency")
    device = ""
    if "device" in data.column_names:
        devices = sorted({str(d) for d in data.column("device").to_pylist() if d})
        device = "; ".join(devices)
    table = Table(name, path, path.parent.parent.name, path.parent.name, device, cols, int((~ok).sum()))
    return table.select(ok) if not ok.all() else table


def read_gpu_tables(source: Source, gpu: str, framework: str) -> dict:
    """name -> Table for every table this GPU has for `framework` (NCCL's tables whatever it is)."""
    if framework not in FRAMEWORKS:
        raise AicDataError(f"--framework {framework}: unknown; valid: {', '.join(FRAMEWORKS)}")
    folder, _ = resolve_gpu(gpu)
    if not (source.root / folder).is_dir():
        raise AicDataError(f"{source.root / folder}: no data for {gpu} in {source.root}")
    # One framework release for the whole profile: the GEMM table's newest, and every other table
    # from that same release where it was measured there. A later release folder can hold a
    # supplement of a few formats or shapes (TensorRT-LLM 1.3.0rc23's MoE table: 4,212 rows of one
    # MXFP4 format on B200 beside 1.3.0rc20's 218,295 rows of six), which the newest-folder rule
    # took instead of the full table.
    gemm = table_path(source, folder, "gemm", framework)
    release = gemm.parent.name if gemm is not None else None
    tables = {}
    for name in TABLES:
        path = table_path(source, folder, name, framework, prefer=None if TABLES[name].framework else release)
        if path is not None:
            tables[name] = read_table(path, name)
    if not tables:
        raise AicDataError(f"{source.root / folder}: no {framework} tables ({', '.join(TABLES)})")
    return tables
