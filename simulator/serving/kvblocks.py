"""Paged KV blocks of one replica and the prefix cache over them (LRU over blocks), with optional
host-DRAM and local-SSD tiers for evicted prefix blocks.

A request holds private blocks (its own tokens) and references shared blocks, each named by a
content key (equal key = equal prefix tokens at equal positions: `workload.block_keys`). A shared
block nobody references stays cached until a new allocation needs its space; the least recently
released goes first (vLLM's and SGLang's LRU eviction). With a host tier, an evicted block is kept
in host memory (its own LRU, `host_blocks` capacity), and a block the host tier evicts moves on to
the SSD tier (`ssd_blocks`, LRU) when there is one (LMCache's and Mooncake's store hierarchy). A
later request loads the blocks back (host: over the host link; SSD: at the slower of the disk and the
host link) instead of recomputing them when that is cheaper (the scheduler chooses).
"""

from __future__ import annotations

from collections import OrderedDict


class BlockPool:
    """Block accounting: `free` unused blocks, `inuse` {key: refcount}, `lru` keys cached but unused."""

    def __init__(self, total: int, host_blocks: int = 0, ssd_blocks: int = 0):
        self.total = int(total)
        self.ssd_blocks = int(ssd_blocks)
        self.ssd: OrderedDict = OrderedDict()
        self.free = int(total)
        self.inuse: dict = {}
        self.lru: OrderedDict = OrderedDict()
        self.host_blocks = int(host_blocks)
        self.host: OrderedDict = OrderedDict()
        self.evictions = 0

    @property
    def available(self) -> int:
        """Blocks an allocation may take now (free, or cached and unreferenced)."""
        return self.free + len(self.lru)

    @property
    def used(self) -> int:
        return self.total - self.free - len(self.lru)

    def take(self, n: int) -> None:
        """Allocate n private blocks, evicting unreferenced cached blocks (LRU first) if needed."""
        short = n - self.free
        while short > 0:
            key, _ = self.lru.popitem(last=False)
            self.evictions += 1
            if self.host_blocks:
                self.host[key] = True
                self.host.move_to_end(key)
                if len(self.host) > self.host_blocks:
                    old, _ = self.host.popitem(last=False)
                    if self.ssd_blocks:
                        self.ssd[old] = True
                        self.ssd.move_to_end(old)
                        if len(self.ssd) > self.ssd_blocks:
                            self.ssd.popitem(last=False)
            self.free += 1
            short -= 1
        self.free -= n

    def give(self, n: int) -> None:
        self.free += n

    def match(self, keys: list) -> int:
        """How many leading keys are cached in HBM (in use or unreferenced)."""
        return leading(keys, self.inuse, self.lru)

    def match_tiers(self, keys: list) -> tuple:
        """(host, ssd): of the leading keys after the HBM hits, how many the host tier holds, then
        how many of the rest the SSD tier holds (a prefix is used up to its first miss)."""
        on_host = self.match_host(keys)
        return on_host, leading(keys[on_host:], self.ssd)

    def match_host(self, keys: list) -> int:
        """How many leading keys (after the HBM hits) the host tier holds."""
        return leading(keys, self.host)

    def ref(self, keys: list) -> None:
        """Reference cached blocks (HBM hits)."""
        for k in keys:
            if k in self.lru:
                del self.lru[k]
                self.inuse[k] = 1
            else:
                self.inuse[k] += 1

    def publish(self, key) -> bool:
        """Turn one of the caller's private blocks into the shared block `key` (referenced by the
        caller). False when the key is cached already (the caller keeps its private copy)."""
        if key in self.inuse or key in self.lru:
            return False
        self.inuse[key] = 1
        self.host.pop(key, None)
        self.ssd.pop(key, None)
        return True

    def unref(self, keys: list) -> None:
        """Release references; blocks nobody references become the most recently used cached ones."""
        for k in keys:
            c = self.inuse[k] - 1
            if c:
                self.inuse[k] = c
            else:
                del self.inuse[k]
                self.lru[k] = True


def leading(keys: list, *held) -> int:
    """How many of `keys`, from the first, one of the containers `held` holds (a cached prefix is
    used up to its first miss)."""
    n = 0
    for k in keys:
        if not any(k in h for h in held):
            break
        n += 1
    return n
