"""How much a four-bit floating-point weight-only kernel (MXFP4 weights, 16-bit activations) costs
beyond its bytes, from the shipped profiles: the fused-MoE grid of those kernels (`moe_fp4_bf16`,
AIConfigurator's `w4a16_mxfp4` tables) against the same profile's bf16 fused-MoE grid at the same
coordinates (tokens per expert, hidden, intermediate, experts touched), for each model shape the
mixed grid measured (its shapes' own scale applied; the bf16 grid read between its measured
shapes). Both attainments are of their own roofs (four-bit or 16-bit weights, the bf16 peak), so

* where the weights' stream binds (2-32 rows per expert), mixed / bf16 is the share of a 16-bit
  kernel's streaming efficiency the four-bit weights reach (efficiency.WEIGHT_ONLY's first figure);
* where the math binds (>= 4096 tokens), bf16 / mixed is the factor by which the conversion
  lengthens the math (its second figure).

Prints one line per profile and shape, then the medians over the Hopper profiles (the GPUs that run
these kernels: Blackwell runs MXFP4 experts under MXFP8 activations, TensorRT-LLM's GPT-OSS
deployment guide, and its W4A16 tables sit far lower). Asserts nothing.

    python benchmarks/aic_weight_only.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from roofline.hwspecs import load_hardware, read_profile

CALIBRATION = Path(__file__).resolve().parent.parent / "hwspecs" / "calibration"
STREAM_ROWS = (2.0, 4.0, 8.0, 16.0, 32.0)  # rows per expert where the weights' stream binds
COMPUTE_TOKENS = (4096.0, 8192.0, 16384.0)  # tokens where the math binds


def attainment(grid, h, inter, k, e, tokens, shaped: bool) -> float:
    pairs = tokens * k
    touched = min(pairs, e)
    coords = np.log2([max(pairs / touched, 1.0), h, inter, touched])
    value = float(grid.at("attainment", *coords))
    return value * float(grid.shape_scale((h, inter, k, e), np.log2(tokens))) if shaped else value


def main() -> None:
    stream, compute = [], []
    for path in sorted(CALIBRATION.glob("*.yaml")):
        profile = read_profile(path)
        mixed, bf16 = profile.grids.get("moe_fp4_bf16"), profile.grids.get("moe_bf16")
        if mixed is None or bf16 is None:
            continue
        hopper = load_hardware(profile.hardware).architecture == "hopper"
        shares, factors = [], []
        for h, inter, k, e in mixed.shapes:
            shares.append(
                np.median(
                    [
                        attainment(mixed, h, inter, k, e, r * e / k, True)
                        / attainment(bf16, h, inter, k, e, r * e / k, False)
                        for r in STREAM_ROWS
                    ]
                )
            )
            factors.append(
                np.median(
                    [
                        attainment(bf16, h, inter, k, e, t, False)
                        / attainment(mixed, h, inter, k, e, t, True)
                        for t in COMPUTE_TOKENS
                    ]
                )
            )
        print(
            f"{path.stem:28} {len(shares):2} shapes: stream share median {np.median(shares):.2f} "
            f"({min(shares):.2f}-{max(shares):.2f}), math factor median {np.median(factors):.2f} "
            f"({min(factors):.2f}-{max(factors):.2f})"
        )
        if hopper:
            stream += shares
            compute += factors
    print(
        f"Hopper, median over {len(stream)} (profile, shape): stream share {np.median(stream):.2f}, "
        f"math factor {np.median(compute):.2f}"
    )


if __name__ == "__main__":
    main()
