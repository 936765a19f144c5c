"""A per-process memo of the Plan callbacks' outputs, keyed by the request's control values.

A plan shared as a link is opened by many people at once, each browser POSTing the same update;
each server worker computes it once and answers the rest from here. The outputs depend only on
the controls (the simulator is pure; an uploaded config is content-addressed and never changes
once stored), so a hit is exactly what a fresh computation would return. Bounded (LRU), and a
refused or failed computation is not kept.

What it leaves to others: the computation (the pages), its budget (`budget.py`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

MAX_ENTRIES = 64


class Memo:
    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self.entries: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def key(args) -> str | None:
        try:
            return json.dumps(args, sort_keys=True, default=repr)
        except (TypeError, ValueError, RecursionError):
            return None

    def get(self, key):
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return True, self.entries[key]
        return False, None

    def put(self, key, value) -> None:
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)


def memoized(fn, keep=lambda out: True):
    """`fn(*args)` answered from a Memo when the same args were seen; `keep(out)` says whether a
    result may be kept (not an error message)."""
    memo = Memo()

    def run(*args):
        key = memo.key(args)
        if key is not None:
            hit, value = memo.get(key)
            if hit:
                return value
        out = fn(*args)
        if key is not None and keep(out):
            memo.put(key, out)
        return out

    run.__name__ = getattr(fn, "__name__", "callback")
    run.memo = memo
    return run
