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
    from roofline.api import list_hardware, load_hardware
    from roofline.report.catalog import hardware_list, hardware_sheet

    if args.hw_command == "list":
        print(hardware_list([(name, load_hardware(name)) for name in list_hardware()]))
        return 0
    print(hardware_sheet(load_hardware(args.name)))
    return 0
