"""`roofline hw list|show NAME`: the hardware registry with sources."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "hw",
        help="list hardware SKUs or show one with its sources",
        description="List hardware SKUs, or show one SKU's specs and their sources.",
    )
    s = p.add_subparsers(dest="hw_command", metavar="ACTION", required=True)
    s.add_parser("list", help="one line per SKU", description="List the hardware SKUs with headline specs.")
    show = s.add_parser(
        "show",
        help="all specs of one SKU with sources",
        description="Show one SKU's specs, derived figures and sources.",
    )
    show.add_argument("name", help="hardware name, e.g. h100-sxm")


def run(args) -> int:
    from roofline.hwspecs import list_hardware, load_hardware

    if args.hw_command == "list":
        print(
            f"{'name':<16} {'memory':>10} {'HBM TB/s':>9} {'bf16 TFLOP/s':>13} {'fp8':>7} {'TDP W':>6} {'$/h':>6}  display name"
        )
        for name in list_hardware():
            hw = load_hardware(name)
            fp8 = f"{hw.peak_flops['fp8'] / 1e12:.0f}" if "fp8" in hw.peak_flops else "-"
            print(
                f"{name:<16} {hw.memory_bytes / 2**30:>6.1f} GiB {hw.memory_bandwidth / 1e12:>9.3g} "
                f"{hw.peak('bf16') / 1e12:>13.1f} {fp8:>7} {hw.tdp_w:>6.0f} {hw.usd_per_gpu_hour:>6.2f}  {hw.display_name}"
            )
        return 0
    hw = load_hardware(args.name)
    print(f"{hw.name}: {hw.display_name} ({hw.vendor} {hw.architecture})")
    print(
        f"  memory             {hw.memory_bytes / 2**30:.1f} GiB at {hw.memory_bandwidth / 1e12:.3g} TB/s   [{hw.section_sources['memory']}]"
    )
    peaks = ", ".join(f"{k} {v / 1e12:g}" for k, v in hw.peak_flops.items())
    print(f"  dense TFLOP/s      {peaks}   [{hw.section_sources['compute_dense_TFLOPs']}]")
    print(f"  ridge point        {hw.ridge_point:.0f} FLOP/byte (bf16)")
    print(
        f"  chip               {hw.sm_count} SMs/CUs, {hw.boost_clock_hz / 1e6:.0f} MHz, L2 {hw.l2_bytes / 2**20:.0f} MiB, {hw.smem_per_sm_bytes / 1024:.0f} KiB shared/SM   [{hw.section_sources['chip']}]"
    )
    print(f"  power              {hw.tdp_w:.0f} W   [{hw.section_sources['power']}]")
    print(
        f"  host link          {hw.host_link_kind} {hw.host_link_bandwidth / 1e9:g} GB/s per direction   [{hw.section_sources['host_link']}]"
    )
    print(
        f"  host memory        {hw.host_memory_bytes / 2**30:g} GiB per GPU ({hw.host_memory_system})   [{hw.section_sources['host_memory']}]"
    )
    print(
        f"  scale-up           {hw.scale_up_kind} {hw.scale_up_bandwidth / 1e9:g} GB/s per direction, domain {hw.scale_up_domain}   [{hw.section_sources['scale_up']}]"
    )
    print(f"  price              ${hw.usd_per_gpu_hour:.2f} per GPU-hour   [{hw.section_sources['price']}]")
    if hw.unconfirmed:
        print(f"  unconfirmed        {', '.join(hw.unconfirmed)}")
    print("sources:")
    for key, text in hw.sources.items():
        print(f"  [{key}] {text}")
    if hw.notes:
        print(f"notes: {hw.notes}")
    return 0
