"""Why the held-out errors of benchmarks/aic_holdout.py are what they are: one note per category,
written under the report's tables (docs/validation/aic_holdout.md). Prose, kept apart from the
script's evaluation code; each note's figures come from the report or from the analyses it names.
"""

WHY = {
    "gemm": "a held-out (n, k) is read between measured neighbours one octave apart in n and k; fp8 "
    "kernels switch tile configurations between shapes (the fastest of several kernels per shape), so "
    "their attainment is less smooth across (n, k) than bf16's. The tables measure m and m + 1 side by "
    "side (1024 and 1025, ...); the grid's roof counts the rows in the kernel's own tiles, fitted from "
    "those pairs (grid_fit.fit_m_tile: vLLM's and SGLang's Hopper fp8 kernels 256 rows, TensorRT-LLM's "
    "fp8 and cuBLAS' bf16 none), which takes vLLM H100 fp8 from 4.2%, p90 16.5% to 3.9%, 14.4%. Kernels "
    "under 50 us carry most of the remaining p90 (B200 SGLang bf16: p90 25-27% below 20 us, 10% above "
    "200 us). The tables themselves disagree on the same call: SGLang's bf16 GEMM table against "
    "vLLM's (both cuBLAS through torch, same shapes) differs by p90 14-40% per GPU (TensorRT-LLM's by 8-25%; "
    "the table under the summary), so a held-out p90 near those figures is the data's own spread",
    "prefill": "held-out (batch, heads, KV heads) at short prompts (< 512 tokens), where the kernel's "
    "fixed time and how many (sequence, head) blocks fill the SMs change fastest",
    "moe": "a held-out model shape (hidden, intermediate, top-k, experts) is extrapolated from the few "
    "(about 30) measured MoE models; the fused kernels' time at a few tokens is mostly fixed (25-110 us) and "
    "tile configurations change between model shapes (errors are mostly a constant bias per model shape: "
    "vLLM H100 bf16, Llama 4's top-1 shapes of intermediate 256 per GPU -12 to -28%, whose kernels spend "
    "about 40 ns per token at hidden 5120 whatever the intermediate, which no other measured family shows). "
    "The tables route tokens evenly, touching min(pairs, experts) experts, and the fused kernel's roof "
    "counts its activation and top-k combine passes; reading the tables as uniform random routing, without "
    "those passes and with one hidden x intermediate axis, gave vLLM H100 bf16 6.0%, p90 21.7% (now 3.6%, "
    "16.2%) and TensorRT-LLM H100 fp8 13.9%, 26.1% (now 7.1%, 18.0%). Frameworks pick the kernel by "
    "model (SGLang B200: FlashInfer TensorRT-LLM kernels for some models, Triton for others, 0.4-0.6 "
    "and 0.15-0.3 of the roof at many tokens), which a shape cannot tell. Gated experts only (Nemotron 3's "
    "non-gated shapes run another path: SGLang H100 0.15-0.2 of the roof, left out), and one fp8 format "
    "per grid, the faster where both measured (was the fastest kernel per shape: vLLM H100's slow "
    "per-tensor kernel priced the shapes only it measured, p90 67% -> 28%)",
    "decode": "the kernel time is read at each measured KV-length octave and taken linear between, so "
    "the length is not where it misses (TensorRT-LLM's XQA switch to multi-block mode near 8K tokens is "
    "followed); a held-out (batch, heads, KV heads, head dim) is read between measured neighbours in "
    "sequences x KV heads and group, where the kernels' split choices change (the vLLM and SGLang "
    "tables step where the split-KV heuristic changes its number of splits). A100 and L40S misses sit "
    "at small batches, where their kernels' fixed time varies most between neighbouring shapes. Rows "
    "measured faster than the datasheet bandwidth (the benchmark re-reading a cache held in L2: L40S) "
    "are left out of fit and check",
    "MLA decode": "a held-out (batch, heads per GPU) is read between measured neighbours; the tables have "
    "single-shape outliers (TensorRT-LLM H100: 1.5 ms at batch 1, 2 heads, 8K tokens, against ~20 us "
    "for its neighbours) and a batch-1 kernel slower than batch 2's, which interpolation between "
    "neighbours cannot know. SGLang's fp8 KV cache decodes 2-5x slower than its bf16 one (the tables' "
    "own numbers)",
    "collectives": "the 20% holdout drops whole message sizes, here 1, 8, 16 and 32 MiB: three "
    "neighbours, so 8-32 MiB are interpolated across a 16x gap (4 to 64 MiB) that holds NCCL's protocol "
    "switches and the framework all-reduce's hand-over to NCCL at its size limit (vLLM's custom "
    "all-reduce: 8 MiB). Each segment is priced as the alpha-beta line between its ends, exact for one "
    "protocol; where NCCL's bandwidth still grows with the message across the gap, the curve is "
    "concave in bytes and the line under-estimates its middle (H100's 8-GPU all-reduce: -11 to -14% at 8-32 MiB), and it cannot see a step it has no point of "
    "(GB200's 4-GPU all-reduce: 37 us at 4 MiB, 88 us at 8 MiB, -47%; A100's vLLM all-reduce: 25 us, "
    "90 us on 2 GPUs, -45%). Each interior size left out alone, with measured neighbours 2x away as the "
    "engine interpolates in use, has a median error of 0.9-3.0% for NCCL's collectives. L40S has no "
    "NVLink: its rows price the PCIe link's NCCL tables (it has no peer all-reduce, so no row of its "
    "own), but the engine's topology (hwspecs scale_up.domain_size 1) sends its multi-GPU groups over "
    "the host-link fabric, which reads neither the tables nor the fits",
}
