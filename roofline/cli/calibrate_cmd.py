"""`roofline calibrate`: measure this GPU's efficiency curves and write its calibration profile, or
(`--from aiconfigurator`) fit one from AIConfigurator's measured kernel tables, no GPU needed."""

from __future__ import annotations

import argparse
import sys

NO_CUDA = "roofline calibrate needs a CUDA GPU (torch.cuda.is_available() is False); see --help"


def add_parser(sub) -> None:
    from roofline.profilers.microbench import GROUPS

    p = sub.add_parser(
        "calibrate",
        help="time microbenchmarks on this GPU and write its calibration profile (or, without a GPU, "
        "--from aiconfigurator: fit one from published kernel tables)",
        description=(
            "Time GEMM, attention, HBM, host-link and launch microbenchmarks on this GPU (CUDA events\n"
            "via triton.testing.do_bench: median, L2 flushed, compile excluded), fit efficiency curves and\n"
            "write hwspecs/calibration/<hardware>.yaml, which `calibration: auto` then uses.\n\n"
            "After each group the results so far are kept beside the output in <name>.partial.yaml\n"
            "(e.g. h100-sxm.partial.yaml); running the same command again resumes from it.\n"
            "Budget on one H100: about 5 minutes with --quick, 10 without (the estimate is printed\n"
            "at the start). Format and grids: profilers/CALIBRATE.md.\n\n"
            f"groups, in run order: {', '.join(GROUPS)}\n\n"
            "Without a GPU: --from aiconfigurator fits the same profile from the kernel latencies that\n"
            "AIConfigurator (PyPI aiconfigurator-core, Apache-2.0; pip install -e '.[aic]') measured per GPU\n"
            "and framework, and writes hwspecs/calibration/<gpu>.<framework>.yaml, which `calibration: auto`\n"
            "uses for that framework (a profile measured on the GPU itself, <gpu>.yaml, comes first).\n"
            "The repository ships these for A100, H100, H200, B200, GB200, B300, GB300, L40S and RTX PRO\n"
            "6000 Server x vLLM, SGLang, TRT-LLM.\n"
            "$ROOFLINE_CALIBRATION_DIR moves the folder that auto reads and calibrate writes."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="reduced grid (about 5 minutes on one H100)")
    p.add_argument(
        "--out",
        metavar="PATH",
        help="profile to write (default: hwspecs/calibration/<hardware>.yaml; with --from, "
        "<gpu>.<framework>.yaml there, or a folder to write them in)",
    )
    p.add_argument(
        "--hardware",
        metavar="NAME",
        help="hwspecs name of this GPU (`roofline hw list`); default: from the device name",
    )
    p.add_argument(
        "--groups", metavar="A,B", help="comma-separated groups to run (default: all; see the list above)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="resume from the partial file, and fail if it is from another device or mode "
        "(a matching partial file is resumed even without this flag)",
    )
    p.add_argument("--fresh", action="store_true", help="ignore an existing partial file and start over")
    p.add_argument(
        "--from",
        dest="from_source",
        choices=("aiconfigurator",),
        help="fit the profile from published measured tables instead of timing this GPU (no GPU needed)",
    )
    p.add_argument(
        "--gpu",
        metavar="NAME",
        help="with --from: hwspecs name (or AIConfigurator folder) of the GPU to import "
        "(default: every GPU the data has and hwspecs knows)",
    )
    p.add_argument(
        "--framework",
        choices=("vllm", "sglang", "trtllm"),
        default="vllm",
        help="with --from: whose kernels' tables to fit (default vllm)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="with --from: a folder laid out like aiconfigurator_core/systems/data "
        "(default: the installed aiconfigurator-core package)",
    )


def _groups(text: str | None) -> list | None:
    from roofline.api import ScenarioError
    from roofline.profilers.microbench import GROUPS

    if not text:
        return None
    names = [g.strip() for g in text.split(",") if g.strip()]
    unknown = [g for g in names if g not in GROUPS]
    if unknown or not names:
        raise ScenarioError(
            [f"--groups: unknown group(s) {', '.join(unknown) or '(none)'}; valid: {', '.join(GROUPS)}"]
        )
    return names


def run_import(args) -> int:
    """`--from aiconfigurator`: fit and write one profile per GPU from the published tables."""
    from roofline.api import ScenarioError
    from roofline.profilers.aic_import import import_profiles
    from roofline.profilers.aic_read import AicDataError, available_gpus, find_source, resolve_gpu
    from roofline.profilers.calibrate_fit import summary_table

    gpu_only = [f"--{n}" for n in ("quick", "resume", "fresh", "groups", "hardware") if getattr(args, n)]
    if gpu_only:
        raise ScenarioError([f"{', '.join(gpu_only)}: only for timing a GPU, not with --from"])
    try:
        source = find_source(args.data)
        have = available_gpus(source, args.framework)
        gpus = [resolve_gpu(args.gpu, have)[1]] if args.gpu else have
        if not gpus:
            raise AicDataError(f"{source.root}: no GPU folder that maps to a hwspecs SKU")
        if args.gpu and gpus[0] not in have:  # a folder the data has, without this framework's tables
            raise AicDataError(
                f"--gpu {args.gpu}: the data has no {args.framework} tables for it; with them: "
                f"{', '.join(have) or 'none'}"
            )
        if len(gpus) > 1 and args.out and args.out.endswith((".yaml", ".yml")):
            raise AicDataError(f"--out {args.out}: a file holds one GPU's profile; pass --gpu or a folder")
        results = import_profiles(source, gpus, args.framework, args.out)
    except AicDataError as exc:
        raise ScenarioError([str(exc)]) from None
    for _, path, doc in results:
        print(summary_table(doc))
        print(f"wrote {path}", file=sys.stderr)
    return 0


def run(args) -> int:
    from roofline.api import ScenarioError, load_hardware

    if getattr(args, "from_source", None):
        return run_import(args)
    groups = _groups(args.groups)
    if args.hardware:
        load_hardware(args.hardware)  # HardwareSpecError (exit 2) with the valid names
    if args.resume and args.fresh:
        raise ScenarioError(["--resume and --fresh contradict each other; pick one"])
    try:
        import torch
    except ImportError:
        raise ScenarioError(
            ["roofline calibrate needs torch with CUDA (torch is not installed: pip install -e '.[profile]')"]
        ) from None
    if not torch.cuda.is_available():
        raise ScenarioError([NO_CUDA])

    from roofline.profilers.calibrate import CalibrateError, calibrate, point_errors
    from roofline.profilers.calibrate_fit import summary_table
    from roofline.profilers.device import DeviceError, read_device, resolve_hardware
    from roofline.profilers.microbench.common import TorchBackend
    from roofline.profilers.timing import CudaTimer

    try:
        device = read_device()
        hardware = resolve_hardware(device.name, args.hardware)
    except DeviceError as exc:
        raise ScenarioError([str(exc)]) from None
    if device.nvml != "ok":
        print(f"warning: {device.nvml}", file=sys.stderr)
    from roofline.profilers.calibrate_progress import TIMER_SETTINGS

    warmup_ms, rep_ms = TIMER_SETTINGS["quick" if args.quick else "full"]
    try:
        result = calibrate(
            hardware=hardware,
            device=device,
            timer=CudaTimer(warmup_ms=warmup_ms, rep_ms=rep_ms),
            backend=TorchBackend("cuda"),
            out=args.out,
            quick=args.quick,
            groups=groups,
            resume=True if args.resume else None,
            fresh=args.fresh,
        )
    except CalibrateError as exc:
        raise ScenarioError([str(exc)]) from None
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the finished groups are kept in the partial file beside the output; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    if not result.profile["raw"]:
        print("error: no group finished; nothing written", file=sys.stderr)
        return 1
    print(summary_table(result.profile))
    for group, n in point_errors(result.profile["raw"]).items():
        print(
            f"warning: {group}: {n} point(s) skipped with an error (see 'skipped' in the raw points)",
            file=sys.stderr,
        )
    print(f"wrote {result.out}", file=sys.stderr)
    if result.failed:
        names = ",".join(result.failed)
        print(
            f"error: group(s) failed: {'; '.join(f'{k}: {v}' for k, v in result.failed.items())}\n"
            f"the profile was written without them; their tracebacks are in {result.partial}; "
            f"rerun with --groups {names} to retry",
            file=sys.stderr,
        )
        return 1
    return 0
