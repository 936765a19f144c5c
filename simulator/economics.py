"""Cost and energy from phase times.

Cost: GPUs x $/GPU-hour over the time a static batch takes (prefill + decode), per million tokens.
Energy: each GPU draws `tdp * (STATIC_POWER_FRACTION + (1 - STATIC_POWER_FRACTION) * u)` during a
phase, where u = max(MFU, MBU) of that phase (the busier of the compute and memory pipes). The
static fraction is an assumption (idle plus clocks/HBM refresh of a loaded-but-stalled GPU) until
`roofline calibrate` records board power with pynvml.
"""

from __future__ import annotations

import numpy as np

from roofline.simulator.columns import CostColumns, EnergyColumns, Throughput

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


def point_metrics(
    batch, prompt, output, ttft, tpot, gpus, usd_per_gpu_hour, tdp_w, util_prefill, util_decode
):
    """Latency, throughput, cost and energy of a static batch from its phase times: `batch`
    sequences of `prompt` tokens each generate `output` tokens; TTFT covers the prefill, then
    output - 1 decode steps of `tpot`. The one place these SPEC keys are defined."""
    e2e = ttft + (output - 1.0) * tpot
    with np.errstate(divide="ignore", invalid="ignore"):
        out_rate = batch * output / e2e
        prompt_rate = batch * prompt / ttft
        decode_rate = batch / tpot
    usd_per_hour = usd_per_gpu_hour * gpus
    return Throughput(
        e2e_s=e2e,
        decode_tokens_per_s=decode_rate,
        throughput_tokens_per_s_per_gpu=out_rate / gpus,
        cost=CostColumns(
            usd_per_hour=usd_per_hour,
            usd_per_million_output_tokens=usd_per_million_tokens(usd_per_hour, out_rate),
            usd_per_million_prompt_tokens=usd_per_million_tokens(usd_per_hour, prompt_rate),
        ),
        energy=EnergyColumns(
            joules_per_output_token=joules_per_output_token(
                gpus, tdp_w, ttft, util_prefill, (output - 1.0) * tpot, util_decode, batch * output
            ),
        ),
    )
