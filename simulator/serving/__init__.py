"""Request-level serving simulation: traffic, a continuous-batching scheduler over paged KV with a
prefix cache, per-step costs from the engine (`step.StepModel`, reassembled fast by `stepcost`), and
the percentiles, goodput and cost of the run. Pure functions of their inputs: trace and histogram
files are read by the API (`roofline.api.serve`) and handed in as text."""
