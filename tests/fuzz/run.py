"""The long fuzz run: N fresh cases (default 10,000), in worker processes, with counts of outcomes.

    python tests/fuzz/run.py                 # 10,000 cases from seed 0
    python tests/fuzz/run.py -n 2000 --start 50000 --workers 4 --time-limit 10

Each worker runs its cases in-process (fuzz_harness.run_case) under a wall-clock bound per case and
an address-space cap; a case whose peak memory grows by more than --memory-mb counts as over memory.
Prints outcome counts (result / clean error / traceback signatures / over time / over memory / long
message) and, per finding, the first seeds and the mutations that produced it: rerun one with
`--seed SEED -v`.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from fuzz_cases import make_case  # noqa: E402
from fuzz_harness import Outcome, peak_rss_bytes, run_case  # noqa: E402


def _worker(args) -> list:
    seeds, time_limit, memory_mb = args
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = peak_rss_bytes() + 4 * memory_mb * 2**20 + 2 * 2**30
    with contextlib_suppress():
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    out = []
    with tempfile.TemporaryDirectory(prefix="roofline-fuzz-") as tmp:
        for seed in seeds:
            before = peak_rss_bytes()
            case = make_case(seed, Path(tmp) / str(seed))
            outcome = run_case(case, time_limit)
            if outcome.kind != "over memory" and peak_rss_bytes() - before > memory_mb * 2**20:
                outcome = Outcome("over memory", seconds=outcome.seconds)
            out.append((seed, case.what, outcome.label, round(outcome.seconds, 3), outcome.detail[:200]))
    return out


class contextlib_suppress:
    """Ignore a failed setrlimit (some sandboxes refuse it); the per-case memory check still runs."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], (ValueError, OSError))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000, help="cases (default 10,000)")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--seed", type=int, help="run this one seed only")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--time-limit", type=float, default=10.0, help="seconds per case (default 10)")
    ap.add_argument("--memory-mb", type=int, default=500, help="peak memory growth per case (default 500)")
    ap.add_argument("--chunk", type=int, default=50, help="cases per worker process")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = ap.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else list(range(args.start, args.start + args.n))
    chunks = [
        (seeds[i : i + args.chunk], args.time_limit, args.memory_mb) for i in range(0, len(seeds), args.chunk)
    ]
    start = time.perf_counter()
    rows = []
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers, maxtasksperchild=1) as pool:
        for chunk in pool.imap_unordered(_worker, chunks):
            rows += chunk
    elapsed = time.perf_counter() - start
    counts = collections.Counter(label for _, _, label, _, _ in rows)
    examples = collections.defaultdict(list)
    for seed, what, label, secs, detail in sorted(rows):
        if args.verbose:
            print(f"{seed:>7} {secs:7.3f}s {label:<14.60} {what:<40} {detail[:100]!r}")
        if label not in ("result", "clean error"):
            examples[label].append((seed, what, secs, detail))
    print(f"{len(rows)} cases in {elapsed:.1f} s ({args.workers} workers, {args.time_limit:g} s per case)")
    for label, n in counts.most_common():
        print(f"{n:>7}  {label}")
    slow = sorted(rows, key=lambda r: -r[3])[:5]
    print("slowest: " + ", ".join(f"seed {s} {t:.2f}s ({w})" for s, w, _, t, _ in slow))
    for label, cases in examples.items():
        print(f"\n{label}:")
        for seed, what, secs, detail in cases[:5]:
            print(f"  seed {seed} ({what}, {secs:.2f}s) {detail[:160]!r}")
    bad = sum(n for label, n in counts.items() if label not in ("result", "clean error"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
