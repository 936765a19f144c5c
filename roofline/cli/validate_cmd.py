"""`roofline validate`: measured vs predicted TTFT and TPOT, from a real torch model or a trace file.

Without --trace it builds a torch decoder with the model's shapes (random weights), times prefill
and decode on the GPU (or, to exercise the pipeline only, the CPU) and compares with the simulator
(`roofline.profilers.validate`). With --trace it compares a user's own measurements instead and
needs neither torch nor a GPU (`roofline.profilers.validate_trace`). Either way it prints a table
and writes JSON + Markdown reports.
"""

from __future__ import annotations

import sys

DEFAULT_MODEL = "llama-3.1-8b"
DEFAULT_CONTEXTS = {"cuda": "1024,4096,16384,32768", "cpu": "128,512"}
DEFAULT_BATCHES = {"cuda": "1,8", "cpu": "1"}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="measure a real torch model (or read a trace) and compare with the simulator",
        description="Time prefill (TTFT) and decode (TPOT) of a torch decoder with the model's shapes and "
        "random weights, run the same points through the simulator, and report the relative error of each "
        "point with the median and p90 absolute error. --trace compares your own measurements instead.",
    )
    p.add_argument("--model", help=f"zoo model or config.json path (default {DEFAULT_MODEL})")
    p.add_argument(
        "--contexts",
        metavar="P1,P2,...",
        help="prompt lengths in tokens (default: "
        + "; ".join(f"{d}: {c}" for d, c in DEFAULT_CONTEXTS.items())
        + ")",
    )
    p.add_argument(
        "--batches",
        metavar="B1,B2,...",
        help="batch sizes (default: " + "; ".join(f"{d}: {b}" for d, b in DEFAULT_BATCHES.items()) + ")",
    )
    p.add_argument(
        "--layers",
        type=int,
        help="decoder layers to build; times are scaled to the full model (default: all that fit in GPU "
        "memory; 2 on CPU)",
    )
    p.add_argument(
        "--trace",
        metavar="FILE",
        help="JSON list or CSV of your measurements: model, hardware, batch, prompt_tokens, output_tokens, "
        "[tp, ...], ttft_s, tpot_s; or a vLLM benchmark_serving result JSON, or SGLang bench_serving / "
        "bench_one_batch JSONL, as they are (give --hardware, and --model/--tp where the file's differ); "
        "compared without running a model",
    )
    p.add_argument("--tp", type=int, help="tensor-parallel degree of trace rows that give none (default 1)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="report folder (default docs/validation/); files <hardware>-<model>-<date>",
    )
    p.add_argument(
        "--hardware",
        help="hwspecs SKU to simulate (default: from the GPU's name; required on CPU and ignored for trace "
        "rows that name their own)",
    )
    p.add_argument(
        "--calibration",
        default="auto",
        help="auto (measured profile if present), datasheet, or a profile path (default auto)",
    )
    p.add_argument(
        "--device", choices=("cuda", "cpu"), help="where to run the model (default: cuda if available)"
    )
    p.add_argument("--no-kernels", action="store_true", help="skip the method-kernel section")


def _int_list(text: str, flag: str) -> list:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected comma-separated integers, e.g. 1024,4096") from None
    if not values or min(values) < 1:
        raise ValueError(f"{flag} {text!r}: expected positive integers, e.g. 1024,4096")
    return sorted(set(values))


def _error(message: str):
    """Bad input: `roofline`'s main prints it as `error: ...` and exits 2."""
    from roofline.api import ScenarioError

    return ScenarioError([message])


def _finish(report: dict, out_dir) -> int:
    from roofline.profilers.validate_report import render_text, write_report

    for problem in report["problems"]:
        print(f"warning: {problem}", file=sys.stderr)
    print(render_text(report))
    json_path, md_path = write_report(report, out_dir)
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def run(args) -> int:
    if args.trace:
        from roofline.profilers.validate_trace import validate_trace

        defaults = {
            "model": args.model,
            "hardware": args.hardware,
            "calibration": args.calibration,
            "tp": args.tp,
        }
        return _finish(validate_trace(args.trace, defaults), args.out)  # a TraceError is a UserError

    try:
        import torch
    except ImportError:
        raise _error(
            "roofline validate needs torch to run a model (pip install -e '.[profile]'); --trace does not"
        ) from None
    from roofline.api import list_hardware, unknown_name_message
    from roofline.profilers.validate import Settings, device_name, run_validation, sku_for_device

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise _error(f"--device cuda: no CUDA device visible to torch {torch.__version__}; use --device cpu")
    try:
        contexts = _int_list(args.contexts or DEFAULT_CONTEXTS[device], "--contexts")
        batches = _int_list(args.batches or DEFAULT_BATCHES[device], "--batches")
    except ValueError as exc:
        raise _error(str(exc)) from None
    hardware, notes = args.hardware, []
    if hardware is None and device == "cpu":
        raise _error(
            "--device cpu has no hwspecs SKU to simulate: pass --hardware NAME (e.g. h100-sxm). CPU timings "
            "only exercise the validation pipeline; they say nothing about the simulator's accuracy"
        )
    if hardware is None:
        name = device_name(torch.device("cuda"))
        hardware = sku_for_device(name)
        if hardware is None:
            raise _error(
                f"no hwspecs SKU known for GPU {name!r}: pass --hardware ({', '.join(list_hardware())})"
            )
        notes.append(f"hardware {hardware} mapped from the device name {name!r}")
    elif hardware not in list_hardware():
        raise _error(unknown_name_message("hardware", hardware, list_hardware()))

    from roofline.api import load_model

    arch = load_model(args.model or DEFAULT_MODEL)
    if args.layers is not None and not 1 <= args.layers <= arch.num_layers:
        raise _error(
            f"--layers {args.layers}: {arch.name} has {arch.num_layers} layers (valid: 1..{arch.num_layers})"
        )
    settings = Settings(
        model=args.model or DEFAULT_MODEL,
        hardware=hardware,
        contexts=contexts,
        batches=batches,
        device=device,
        layers=args.layers,
        calibration=args.calibration,
        kernels=not args.no_kernels,
        notes=notes,
    )
    return _finish(run_validation(settings), args.out)
