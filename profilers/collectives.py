"""Collective microbenchmarks with torch.distributed: NCCL on GPU nodes, gloo on CPU.

Times all-reduce, all-gather, reduce-scatter, all-to-all and a 0<->1 send/recv ping-pong over
power-of-two message sizes, converts each point into nccl-tests' algbw and busbw, fits the alpha-beta
model of `fitting.py` per collective, and has rank 0 write the result as YAML under a top-level
`collectives:` key, keyed by link label (schema: COLLECTIVES.md), so it can sit inside a calibration
profile. Message sizes follow nccl-tests: S is the whole array (all-gather output, reduce-scatter
input, all-to-all send buffer), float32 elements.

    torchrun --nproc-per-node 8 -m roofline.profilers.collectives --backend nccl --out nvlink.yaml
    python -m roofline.profilers.collectives --local 2 --out loopback.yaml      # gloo, CPU, no torchrun

torch is imported here and nowhere else on import of `roofline`; the fit itself lives in `fitting.py`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pickle
import platform
import socket
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import yaml

try:
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
except ModuleNotFoundError as exc:  # run as a script on a machine set up for planning only
    if __name__ == "__main__":
        sys.exit(
            f"python -m roofline.profilers.collectives needs torch ({exc}): install the profile extra, "
            'python -m pip install -e ".[profile]"'
        )
    raise

from roofline.fileio import write_atomic
from roofline.profilers.fitting import COLLECTIVES, algbw, busbw_factor, fit_alpha_beta, latency_steps

BACKENDS = ("gloo", "nccl")
LINKS = ("nvlink", "pcie", "ib", "network", "loopback")
DTYPE = torch.float32
KiB, MiB = 2**10, 2**20

# Newer torch names first (2.13 deprecates all_gather_into_tensor for all_gather_single).
_all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_reduce_scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


@dataclass(frozen=True)
class World:
    """This process's place in the initialised default process group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device


def message_sizes(min_bytes: int, max_bytes: int) -> list[int]:
    """The powers of two between min_bytes and max_bytes, both included."""
    return [2**e for e in range(int(max_bytes).bit_length()) if min_bytes <= 2**e <= max_bytes]


def _make_op(name: str, size_bytes: int, world: World):
    """Buffers and a zero-argument call doing one blocking `name` of nccl-tests size `size_bytes`.

    Returns (actual bytes, call); sizes are rounded down to a multiple of n elements where the op
    splits the array over ranks. send/recv returns a call that does a whole round trip on ranks 0
    and 1 and None on the others.
    """
    n, item = world.world_size, torch.finfo(DTYPE).bits // 8
    count = max(size_bytes // item, 1)
    if name in ("all_gather", "reduce_scatter", "all_to_all"):
        count = max(count // n, 1) * n
    full = torch.ones(count, dtype=DTYPE, device=world.device)
    if name == "all_reduce":
        return count * item, lambda: dist.all_reduce(full)
    if name == "all_gather":
        part = torch.ones(count // n, dtype=DTYPE, device=world.device)
        return count * item, lambda: _all_gather(full, part)
    if name == "reduce_scatter":
        part = torch.empty(count // n, dtype=DTYPE, device=world.device)
        return count * item, lambda: _reduce_scatter(part, full)
    if name == "all_to_all":
        out = torch.empty_like(full)
        return count * item, lambda: dist.all_to_all_single(out, full)
    if world.rank > 1:
        return count * item, None
    peer = 1 - world.rank

    def ping_pong():
        if world.rank == 0:
            dist.send(full, peer)
            dist.recv(full, peer)
        else:
            dist.recv(full, peer)
            dist.send(full, peer)

    return count * item, ping_pong


def _time_op(call, world: World, iters: int, warmup: int) -> float:
    """Median seconds of one call on this rank, after `warmup` untimed calls; 0 if it takes no part."""
    for _ in range(warmup):
        if call is not None:
            call()
    _barrier(world)
    if call is None:
        return 0.0
    if world.device.type == "cuda":
        # NCCL ops are asynchronous on the GPU: bracket each with CUDA events on the current stream,
        # which the blocking call has made wait for NCCL's stream.
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        torch.cuda.synchronize(world.device)
        for start, end in zip(starts, ends):
            start.record()
            call()
            end.record()
        torch.cuda.synchronize(world.device)
        samples = [start.elapsed_time(end) * 1e-3 for start, end in zip(starts, ends)]
    else:
        # gloo on CPU tensors is synchronous: the call returns when this rank's part is done, so a
        # host clock around it measures the collective itself (there is no device queue to drain).
        samples = []
        for _ in range(iters):
            t0 = time.perf_counter()  # host clock: gloo CPU ops block until complete
            call()
            samples.append(time.perf_counter() - t0)  # host clock: see above
    return float(np.median(samples))


def _barrier(world: World) -> None:
    if world.backend == "nccl":
        dist.barrier(device_ids=[world.device.index])
    else:
        dist.barrier()


def _max_over_ranks(values: list[float], world: World) -> list[float]:
    """Element-wise max over ranks: a collective is as slow as its slowest rank."""
    t = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def _all_ranks_ok(ok: bool, world: World) -> bool:
    flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=world.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def measure(name: str, world: World, sizes: list[int], iters: int, warmup: int) -> dict:
    """One collective over all sizes: raw points and the alpha-beta fit, or why it was skipped."""
    n = world.world_size
    points_bytes, medians = [], []
    for size in sizes:
        nbytes, call = _make_op(name, size, world)
        error = None
        try:
            if call is not None:
                call()  # first call: finds an op the backend lacks before any timing
        except RuntimeError as exc:  # c10d raises RuntimeError (or a subclass) for unsupported ops
            error = f"{world.backend}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        if not _all_ranks_ok(error is None, world):
            return {"skipped": error or f"{world.backend}: {name} failed on another rank"}
        medians.append(_time_op(call, world, iters, warmup))
        points_bytes.append(nbytes)
    seconds = _max_over_ranks(medians, world)
    if name == "send_recv":
        seconds = [s / 2 for s in seconds]  # one way is half the round trip
    factor, steps = busbw_factor(name, n), latency_steps(name, n)
    alg = algbw(points_bytes, seconds)
    fit = fit_alpha_beta(points_bytes, seconds, steps, factor)
    return {
        "latency_steps": steps,
        "busbw_factor": factor,
        "points": [
            {"bytes": int(b), "seconds": float(s), "algbw_Bps": float(a), "busbw_Bps": float(a * factor)}
            for b, s, a in zip(points_bytes, seconds, alg)
        ],
        "fit": {"alpha_s": fit.alpha_s, "beta_Bps": fit.beta_Bps, "residual": fit.residual},
    }


def _device_name(world: World) -> str:
    if world.device.type == "cuda":
        return torch.cuda.get_device_name(world.device)
    return f"cpu ({platform.machine()}, {os.cpu_count()} logical cores)"


def run(world: World, sizes: list[int], iters: int, warmup: int | None = None) -> dict:
    """Benchmark every collective on the initialised process group; the same dict on every rank.

    Returns {"provenance": {...}, "ops": {collective: {points, fit} | {skipped}}}; `to_profile`
    wraps it under `collectives: {<link>: ...}`.
    """
    warmup = max(2, iters // 5) if warmup is None else warmup
    where = [None] * world.world_size
    dist.all_gather_object(where, (socket.gethostname(), _device_name(world)))
    ops = {name: measure(name, world, sizes, iters, warmup) for name in COLLECTIVES}
    hostnames = sorted({host for host, _ in where})
    provenance = {
        "backend": world.backend,
        "world_size": world.world_size,
        "nodes": len(hostnames),
        "hostnames": hostnames,
        "devices": [device for _, device in where],
        "torch_version": str(torch.__version__),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dtype": str(DTYPE).removeprefix("torch."),
        "iters": iters,
        "warmup": warmup,
        "timing": "CUDA events per call"
        if world.device.type == "cuda"
        else "host clock around blocking call",
        "statistic": "median per rank, max over ranks",
    }
    return {"provenance": provenance, "ops": ops}


def default_link(backend: str, nodes: int) -> str:
    """'loopback' for gloo, 'network' across nodes, else 'nvlink' (override with --link)."""
    if backend == "gloo":
        return "loopback"
    return "network" if nodes > 1 else "nvlink"


def to_profile(result: dict, link: str) -> dict:
    """The calibration-profile fragment: {"collectives": {link: result}}."""
    return {"collectives": {link: result}}


def write_yaml_atomic(data: dict, path: str) -> None:
    """The results as YAML, written atomically (roofline.fileio.write_atomic)."""
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


def free_local_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _local_worker(rank: int, world_size: int, port: int, fn, args: tuple, result_path: str) -> None:
    # Keep gloo on the loopback interface, whatever the hostname resolves to.
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo0" if sys.platform == "darwin" else "lo")
    # N processes share this machine's cores: one compute thread each, so they do not oversubscribe.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        world = World(rank, world_size, rank, "gloo", torch.device("cpu"))
        out = fn(world, *args)
        if rank == 0:
            with open(result_path, "wb") as f:
                pickle.dump(out, f)
    finally:
        dist.destroy_process_group()


def spawn_local(world_size: int, fn, *args):
    """Run fn(world, *args) in `world_size` local CPU processes joined by gloo on 127.0.0.1.

    Returns rank 0's return value (handed back through a private temporary file). For tests and
    `--local N`; GPUs and several nodes go through torchrun instead.
    """
    if world_size < 2:
        raise ValueError(f"a collective benchmark needs at least 2 processes, got {world_size}")
    with tempfile.TemporaryDirectory(prefix="roofline-collectives-") as tmp:
        result_path = os.path.join(tmp, "rank0.pkl")
        mp.spawn(
            _local_worker, args=(world_size, free_local_port(), fn, args, result_path), nprocs=world_size
        )
        with open(result_path, "rb") as f:
            return pickle.load(f)  # our own file, written by rank 0 above


def benchmark(world: World, sizes: list[int], iters: int, link: str | None, out: str) -> dict:
    """run() plus the link label; rank 0 writes `out`. Returns the profile fragment."""
    result = run(world, sizes, iters)
    link = link or default_link(world.backend, result["provenance"]["nodes"])
    profile = to_profile(result, link)
    if world.rank == 0:
        write_yaml_atomic(profile, out)
    return profile


def _world_from_env(parser: argparse.ArgumentParser, backend: str) -> World:
    """Initialise the default group from torchrun's env vars, or stop with a message saying what's wrong."""
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        parser.error(
            f"{', '.join(missing)} not set: run under torchrun (--nproc-per-node N, N >= 2) "
            "or pass --local N for N gloo processes on this machine"
        )
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size < 2:
        parser.error(
            f"WORLD_SIZE is {world_size}: collectives need at least 2 processes (torchrun --nproc-per-node N, N >= 2)"
        )
    if backend == "nccl":
        if not torch.cuda.is_available() or not dist.is_nccl_available():
            parser.error(
                f"--backend nccl needs CUDA GPUs and a torch built with NCCL (torch {torch.__version__}, "
                f"CUDA available: {torch.cuda.is_available()}); use --backend gloo on CPU"
            )
        if local_rank >= torch.cuda.device_count():
            parser.error(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs on this node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return World(rank, world_size, local_rank, backend, device)


def _summary(profile: dict) -> str:
    lines = []
    for link, body in profile["collectives"].items():
        p = body["provenance"]
        lines.append(f"{link}: {p['backend']}, {p['world_size']} ranks on {p['nodes']} node(s)")
        for name, op in body["ops"].items():
            if "skipped" in op:
                lines.append(f"  {name:15s} skipped: {op['skipped']}")
            else:
                f = op["fit"]
                lines.append(
                    f"  {name:15s} alpha {f['alpha_s'] * 1e6:8.2f} us/step  beta {f['beta_Bps'] / 1e9:8.3f} GB/s"
                    f"  residual {f['residual']:.1%}"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m roofline.profilers.collectives",
        description="Time collectives, fit alpha-beta per collective, write a calibration YAML fragment.",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="gloo (CPU) or nccl (GPUs); default nccl where CUDA GPUs are visible, else gloo",
    )
    parser.add_argument("--out", required=True, help="YAML file rank 0 writes (atomically)")
    parser.add_argument("--min-kib", type=float, default=1.0, help="smallest message in KiB (default 1)")
    parser.add_argument("--max-mib", type=float, default=64.0, help="largest message in MiB (default 64)")
    parser.add_argument("--iters", type=int, default=20, help="timed calls per size; the median is kept")
    parser.add_argument(
        "--link",
        choices=LINKS,
        default=None,
        help="link label (default: loopback on gloo, nvlink on one node, network across nodes)",
    )
    parser.add_argument(
        "--local",
        type=int,
        metavar="N",
        default=None,
        help="spawn N gloo processes on 127.0.0.1 instead of running under torchrun",
    )
    args = parser.parse_args(argv)

    backend = args.backend or ("nccl" if args.local is None and torch.cuda.is_available() else "gloo")
    min_bytes, max_bytes = int(args.min_kib * KiB), int(args.max_mib * MiB)
    sizes = message_sizes(max(min_bytes, 4), max_bytes)
    if len(sizes) < 2:
        parser.error(
            f"--min-kib {args.min_kib} .. --max-mib {args.max_mib} holds {len(sizes)} power-of-two size(s); "
            "the alpha-beta fit needs at least 2"
        )
    if args.iters < 1:
        parser.error(f"--iters must be >= 1, got {args.iters}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        parser.error(f"--out {args.out}: directory does not exist")

    if args.local is not None:
        if backend != "gloo":
            parser.error("--local runs gloo on CPU only; for NCCL run under torchrun")
        if args.local < 2:
            parser.error(f"--local {args.local}: collectives need at least 2 processes")
        profile = spawn_local(args.local, benchmark, sizes, args.iters, args.link, args.out)
    else:
        world = _world_from_env(parser, backend)
        try:
            profile = benchmark(world, sizes, args.iters, args.link, args.out)
        finally:
            dist.destroy_process_group()
        if world.rank != 0:
            return
    print(_summary(profile))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
