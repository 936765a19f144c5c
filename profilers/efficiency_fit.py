"""Fit the saturating efficiency curve of `simulator.calibration` to measured points.

eff(x) = e_max / (1 + (x_half / x)^p), fitted by least squares on relative errors (scipy
curve_fit with sigma = efficiency, bounded: 0 < e_max <= 1.2, x_half > 0, 0 < p <= 8) from a data-driven start; reports the
relative RMS residual. Pure numpy/scipy: runs anywhere, so refits need no GPU.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import curve_fit

from roofline.api import hill


def fit_efficiency_curve(x, efficiency) -> dict:
    """{'fit': {e_max, x_half, p}, 'residual': relative RMS, 'points': [...]} for a profile curve."""
    x = np.asarray(x, dtype=float)
    e = np.asarray(efficiency, dtype=float)
    if x.size < 3 or x.size != e.size:
        raise ValueError(f"need at least 3 (x, efficiency) points of equal length, got {x.size} and {e.size}")
    if np.any(x <= 0) or np.any(~np.isfinite(e)) or np.any(e <= 0):
        raise ValueError("sizes must be positive and efficiencies positive and finite")
    e_max0 = float(min(max(e.max() * 1.05, 1e-3), 1.2))
    half = e_max0 / 2.0
    above = x[e >= half]
    x_half0 = float(above.min()) if above.size else float(np.median(x))
    params, _ = curve_fit(
        lambda xx, a, b, c: hill(xx, a, b, c),
        x,
        e,
        p0=(e_max0, x_half0, 1.5),
        sigma=e,  # relative errors: small kernels' low efficiencies count as much as large ones
        bounds=((1e-6, 1e-9, 1e-3), (1.2, np.inf, 8.0)),
        maxfev=20000,
    )
    fitted = hill(x, *params)
    residual = float(np.sqrt(np.mean(((fitted - e) / e) ** 2)))
    return {
        "fit": {"e_max": float(params[0]), "x_half": float(params[1]), "p": float(params[2])},
        "residual": residual,
        "points": [{"x": float(a), "efficiency": float(b)} for a, b in zip(x, e)],
    }
