"""Where a search's independent work units run: in this process, a local process pool, or Ray tasks.

Each executor has one method, `map(fn, items, progress=None) -> list`, returning `fn(item)` for
every item in the items' order whatever order they finished in, so a search's results never depend
on which executor ran it (the work units themselves are deterministic: fixed seeds, no shared
state). `fn` must be a module-level function and the items picklable (the pool and Ray ship them to
other processes). `progress(done, total)`, when given, is called here as units finish (Ray: once,
when all have).

Ray is an optional extra (`pip install 'roofline[ray]'`), imported only when `--ray` is given.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from roofline.simulator.errors import UserError


class InProcess:
    """Runs every item here, one after another (`--workers 1`; tests; a debugger)."""

    name = "in-process"

    def map(self, fn, items, progress=None) -> list:
        items = list(items)
        out = []
        for item in items:
            out.append(fn(item))
            if progress:
                progress(len(out), len(items))
        return out


class LocalPool:
    """A `concurrent.futures.ProcessPoolExecutor` of `workers` processes on this machine; one item
    per task (chunksize 1), since the units' run times differ by an order of magnitude."""

    def __init__(self, workers: int):
        self.workers = workers
        self.name = f"{workers} local processes"

    def map(self, fn, items, progress=None) -> list:
        items = list(items)
        with ProcessPoolExecutor(max_workers=min(self.workers, max(len(items), 1))) as pool:
            futures = [pool.submit(fn, item) for item in items]
            for done, _ in enumerate(as_completed(futures), 1):
                if progress:
                    progress(done, len(items))
            return [f.result() for f in futures]


class RayCluster:
    """Ray tasks on the cluster at `address` (`ray.init(address=...)`: `auto`, `ray://host:10001`,
    or `local` for a cluster started in this process). Each item is one task; `ray.get` of the
    task list returns the results in the items' order. Workers must be able to import roofline
    (the same version: the cluster's runtime environment is the user's to set up)."""

    def __init__(self, address: str, ray_module=None):
        self.ray = ray_module or _import_ray()
        self.address = address
        self.name = f"Ray cluster at {address}"

    def map(self, fn, items, progress=None) -> list:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=None if self.address == "local" else self.address, ignore_reinit_error=True)
        task = ray.remote(fn)
        out = list(ray.get([task.remote(item) for item in items]))
        if progress:
            progress(len(out), len(out))
        return out


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(
            "--ray: Ray is not installed; install the optional extra with pip install 'roofline[ray]' "
            "(or leave out --ray to use local processes)"
        ) from None
    return ray


def make_executor(workers: int | None = None, ray_address: str | None = None):
    """The executor the flags ask for: Ray when `ray_address` is given, else `workers` local
    processes (default: this machine's CPU count), in this process when that is 1."""
    if ray_address is not None:
        if not ray_address.strip():
            raise UserError("--ray: give the cluster's address, e.g. --ray auto or --ray ray://head:10001")
        return RayCluster(ray_address.strip())
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n < 1:
        raise UserError(f"--workers {n}: give a positive number of processes")
    return InProcess() if n == 1 else LocalPool(n)
