"""roofline: a roofline profiler and cost simulator for long-context LLM inference.

The planning path (`simulate`, `sweep`) imports numpy and yaml only; torch, triton and dash are
imported by the profilers and the dashboard alone.
"""

__version__ = "0.1.0"
__all__ = ["simulate", "sweep", "step_model", "serve"]


def __getattr__(name):  # lazy, so `import roofline.hwspecs` stays light
    if name in __all__:
        from roofline import api

        return getattr(api, name)
    raise AttributeError(name)
