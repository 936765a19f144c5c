"""The measurement side of roofline: microbenchmarks that run on GPUs (and, for collectives, on CPU
with gloo) and write what they measure in the calibration profile format.

Nothing heavy is imported here: torch is imported only inside the benchmark modules that need it
(`roofline.profilers.collectives`), so importing `roofline.profilers` or its pure fitting code
(`roofline.profilers.fitting`) stays cheap, and `roofline.simulator` never imports this package.
"""
