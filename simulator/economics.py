"""Cost and energy from phase times.

Cost: GPUs x $/GPU-hour over the time a static batch takes (prefill + decode), per million tokens.
Energy: each GPU draws `tdp * (STATIC_POWER_FRACTION + (1 - STATIC_POWER_FRACTION) * u)` during a
phase, where u = max(MFU, MBU) of that phase (the busier of the compute and memory pipes). The
static fraction is an assumption (idle plus clocks/HBM refresh of a loaded-but-stalled GPU) until
`roofline calibrate` records board power with pynvml.
"""

from __future__ import annotations

import numpy as np

STATIC_POWER_FRACTION = 0.3


def gpu_power_w(tdp_w, utilisation):
    return tdp_w * (STATIC_POWER_FRACTION + (1.0 - STATIC_POWER_FRACTION) * np.clip(utilisation, 0.0, 1.0))


def usd_per_million_tokens(usd_per_hour, tokens_per_s):
    with np.errstate(divide="ignore"):
        return usd_per_hour / 3600.0 / tokens_per_s * 1e6


def joules_per_output_token(gpus, tdp_w, prefill_s, prefill_util, decode_s, decode_util, output_tokens_total):
    energy = gpus * (
        gpu_power_w(tdp_w, prefill_util) * prefill_s + gpu_power_w(tdp_w, decode_util) * decode_s
    )
    return energy / output_tokens_total
