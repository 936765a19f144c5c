"""The requests of a serving run: arrival times, prompt and output lengths, sessions and shared
prefixes, drawn reproducibly from the `serving:` section (one numpy Generator seeded by `seed`) or
taken from a trace.

Arrivals: Poisson at `rate_per_s`, or gamma-distributed gaps with coefficient of variation `cv`
(shape 1/cv^2, mean 1/rate: cv > 1 is burstier than Poisson, as in DistServe's and Vidur's
workload generators); `offline` queues everything at t = 0 (trtllm-bench's max-throughput mode);
`concurrency` N is a closed-loop client: requests 0..N-1 arrive at t = 0 and request i + N when
request i completes (after `think_time_s`, exponential mean, if set): N client slots, each sending
its next request when its last one ends.
Sessions: a session's first turn arrives by the process above, each later turn `think_time_s`
(exponential mean) after the previous turn's last token; its prompt is the conversation so far
(earlier prompts and outputs) plus newly drawn prompt tokens, and that history is a shared prefix
the prefix cache can reuse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roofline.simulator.errors import UserError, short
from roofline.simulator.serving.traces import MOONCAKE_BLOCK_TOKENS, Trace


@dataclass
class Requests:
    """Column arrays over requests (index = request id), ordered by first possible arrival."""

    arrival_s: np.ndarray  # NaN for a later session turn: it arrives think_s after its previous turn ends
    prompt: np.ndarray
    output: np.ndarray
    next_turn: np.ndarray  # the id of the session's next turn, or -1
    think_s: np.ndarray  # think time before this request (later turns)
    prefix_key: list  # hashable content key of the shared prefix, or None
    prefix_tokens: np.ndarray  # tokens of the prompt shared under prefix_key
    cache_tokens: np.ndarray  # tokens stored under prefix_key when the request ends (sessions: all)
    hash_ids: list  # Mooncake block ids (tuple) per request
    preloaded: np.ndarray | None = None  # KV tokens already in place at admission (a decode pool's)

    @property
    def n(self) -> int:
        return int(self.prompt.size)


def parse_histogram(text: str, name: str) -> tuple:
    """`tokens,weight` rows (a header row allowed) -> (tokens, probabilities)."""
    tokens, weights = [], []
    for n, line in enumerate(text.splitlines(), 1):
        cells = [c.strip() for c in line.split(",")]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(cells) != 2:
            raise UserError(f"{name}:{n}: expected two columns `tokens,weight`, got {short(line)}")
        try:
            t, w = float(cells[0]), float(cells[1])
        except ValueError:
            if not tokens and n == 1:
                continue  # header
            raise UserError(f"{name}:{n}: `tokens,weight` must be numbers, got {short(line)}") from None
        if not (t >= 1 and t == int(t) and t <= 1e8) or not (w >= 0 and np.isfinite(w)):
            raise UserError(
                f"{name}:{n}: tokens must be a whole number >= 1 and weight >= 0, got {short(line)}"
            )
        tokens.append(int(t))
        weights.append(w)
    total = sum(weights)
    if not tokens or total <= 0:
        raise UserError(f"{name}: a length histogram needs at least one row with a positive weight")
    return np.array(tokens), np.array(weights) / total


def draw_lengths(spec, n: int, rng, histograms: dict, path: str) -> np.ndarray:
    """n token lengths from a length field (a number or a distribution mapping)."""
    if isinstance(spec, int):
        return np.full(n, spec, dtype=np.int64)
    dist = spec["dist"]
    if dist == "fixed":
        x = np.full(n, float(spec["value"]))
    elif dist == "uniform":
        x = rng.integers(int(spec["min"]), int(spec["max"]) + 1, n).astype(float)
    elif dist == "lognormal":
        # E[X] = exp(mu + sigma^2/2) = mean, so mu = ln(mean) - sigma^2/2.
        sigma = float(spec["sigma"])
        x = rng.lognormal(np.log(spec["mean"]) - sigma**2 / 2.0, sigma, n)
    else:
        tokens, probs = histograms[spec["file"]]
        x = rng.choice(tokens, size=n, p=probs).astype(float)
    lo, hi = spec.get("min", 1), spec.get("max", np.inf)
    out = np.clip(np.rint(x), max(1, lo), hi).astype(np.int64)
    if out.min() < 1:
        raise UserError(f"{path}: draws below one token; raise min")
    return out


def _gaps(cfg, n: int, rng) -> np.ndarray:
    if cfg.offline:
        return np.zeros(n)
    rate = cfg.rate_per_s
    if cfg.cv == 1.0:
        return rng.exponential(1.0 / rate, n)
    shape = 1.0 / cfg.cv**2  # gamma(k, theta): mean k*theta = 1/rate, cv = 1/sqrt(k)
    return rng.gamma(shape, 1.0 / (rate * shape), n)


def generate(cfg, histograms: dict | None = None) -> Requests:
    """Requests drawn from the serving section `cfg` (config.ServingConfig)."""
    rng = np.random.default_rng(cfg.seed)
    n, turns = cfg.requests, cfg.turns
    sessions = -(-n // turns)
    queued = cfg.offline or cfg.concurrency is not None  # no arrival process to draw
    starts = np.zeros(sessions) if queued else np.cumsum(_gaps(cfg, sessions, rng))
    new_prompt = draw_lengths(cfg.prompt_tokens, n, rng, histograms or {}, "serving.prompt_tokens")
    output = draw_lengths(cfg.output_tokens, n, rng, histograms or {}, "serving.output_tokens")
    think = rng.exponential(cfg.think_time_s, n) if cfg.think_time_s > 0 else np.zeros(n)
    session = np.arange(n) // turns
    turn = np.arange(n) % turns
    # History of turn k = sum over earlier turns of (new prompt + output): a per-session cumsum.
    step = new_prompt + output
    csum = np.cumsum(step)
    first = np.arange(n) - turn
    history = csum - step - np.where(first > 0, csum[np.maximum(first - 1, 0)], 0)
    prompt = history + new_prompt
    last = (turn == turns - 1) | (np.arange(n) == n - 1)
    next_turn = np.where(last, -1, np.arange(n) + 1)
    arrival = np.where(turn == 0, starts[session], np.nan)
    if cfg.concurrency is not None:  # closed loop (single-turn: config refuses turns > 1)
        slots = int(min(cfg.concurrency, n))
        ids = np.arange(n)
        arrival = np.where(ids < slots, 0.0, np.nan)
        next_turn = np.where(ids + slots < n, ids + slots, -1)
        turn = np.where(ids < slots, 0, 1)  # a slot's later request waits think_s after its previous one
    multi = turns > 1
    keys = [("s", int(s)) if multi else None for s in session]
    return Requests(
        arrival_s=arrival,
        prompt=prompt,
        output=output,
        next_turn=next_turn,
        think_s=np.where(turn == 0, 0.0, think),
        prefix_key=keys,
        prefix_tokens=history if multi else np.zeros(n, np.int64),
        cache_tokens=(prompt + output) if multi else np.zeros(n, np.int64),
        hash_ids=[()] * n,
    )


def from_trace(trace: Trace, cfg) -> Requests:
    """The first `cfg.requests` requests of a parsed trace, in arrival order."""
    rows = trace.rows[: cfg.requests]
    n = len(rows)
    if trace.request_rate is not None:  # a vLLM result: arrivals redrawn as the benchmark drew them
        rng = np.random.default_rng(cfg.seed)
        arrival = (
            np.zeros(n)
            if np.isinf(trace.request_rate)
            else np.cumsum(rng.exponential(1 / trace.request_rate, n))
        )
    else:
        arrival = np.array([r.arrival_s for r in rows], float)
    order = np.argsort(arrival, kind="stable")
    rows = [rows[i] for i in order]
    arrival = arrival[order]
    prompt = np.array([r.prompt for r in rows], np.int64)
    output = np.array([r.output for r in rows], np.int64)
    keys, prefix, cache = [], np.zeros(n, np.int64), np.zeros(n, np.int64)
    last_in_session: dict = {}
    for i, r in enumerate(rows):
        if r.session is not None:
            key = ("s", r.session)
            prev = last_in_session.get(r.session)
            # A later turn's prompt holds the conversation so far: the earlier turn's prompt + output.
            prefix[i] = 0 if prev is None else min(r.prompt, prompt[prev] + output[prev])
            cache[i] = r.prompt + r.output
            last_in_session[r.session] = i
        elif r.prefix_key is not None:
            key = r.prefix_key
            prefix[i] = cache[i] = r.prefix_tokens
        elif r.hash_ids:
            key = "mooncake"
            prefix[i] = cache[i] = min(r.prompt, len(r.hash_ids) * MOONCAKE_BLOCK_TOKENS)
        else:
            key = None
        keys.append(key)
    return Requests(
        arrival_s=arrival,
        prompt=prompt,
        output=output,
        next_turn=np.full(n, -1),
        think_s=np.zeros(n),
        prefix_key=keys,
        prefix_tokens=prefix,
        cache_tokens=cache,
        hash_ids=[r.hash_ids for r in rows],
    )


def block_keys(req: Requests, i: int, tokens: int, block_tokens: int) -> list:
    """Content keys of request i's first full blocks covering at most `tokens` shared tokens:
    equal keys = equal KV (same prefix content at the same positions)."""
    key = req.prefix_key[i]
    blocks = int(tokens) // block_tokens
    if key is None or blocks == 0:
        return []
    if key != "mooncake":
        return [(key, b) for b in range(blocks)]
    # Mooncake: our block b is determined by the trace's blocks 0..j that cover its last token.
    ids = req.hash_ids[i]
    chain, out, j_done = [], [], -1
    for b in range(blocks):
        j = ((b + 1) * block_tokens - 1) // MOONCAKE_BLOCK_TOKENS
        while j_done < j:
            j_done += 1
            chain.append(hash((chain[-1] if chain else 0, ids[j_done])))
        out.append(("m", chain[j], b))
    return out


def owners(req: Requests, replicas: int) -> np.ndarray:
    """The data-parallel replica of each request: sessions (else requests) dealt round-robin, a
    session's turns staying on one replica (its KV lives there)."""
    sid = np.arange(req.n)
    for i in range(req.n):  # a later turn belongs to the session of the turn that points to it
        if req.next_turn[i] >= 0:
            sid[req.next_turn[i]] = sid[i]
    _, dense_sid = np.unique(sid, return_inverse=True)
    return dense_sid % replicas


def take(req: Requests, idx: np.ndarray) -> Requests:
    """The requests `idx` (session links kept among them)."""
    remap = np.full(req.n, -1)
    remap[idx] = np.arange(idx.size)
    nxt = req.next_turn[idx]
    return Requests(
        arrival_s=req.arrival_s[idx],
        prompt=req.prompt[idx],
        output=req.output[idx],
        next_turn=np.where(nxt >= 0, remap[np.maximum(nxt, 0)], -1),
        think_s=req.think_s[idx],
        prefix_key=[req.prefix_key[i] for i in idx],
        prefix_tokens=req.prefix_tokens[idx],
        cache_tokens=req.cache_tokens[idx],
        hash_ids=[req.hash_ids[i] for i in idx],
        preloaded=None if req.preloaded is None else req.preloaded[idx],
    )


def split(req: Requests, replicas: int) -> list:
    """(indices, Requests) of each data-parallel replica (`owners`)."""
    if replicas == 1:
        return [(np.arange(req.n), req)]
    own = owners(req, replicas)
    return [(idx, take(req, idx)) for idx in (np.flatnonzero(own == r) for r in range(replicas))]
