"""`roofline hw list|show NAME`: the hardware registry with sources."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "hw",
        help="list hardware SKUs or show one with its sources",
        description="List hardware SKUs, or show one SKU's specs and their sources.",
    )
    s = p.add_subparsers(dest="hw_command", metavar="ACTION", required=True)
    listing = s.add_parser(
        "list", help="one line per SKU", description="List the hardware SKUs with headline specs."
    )
    show = s.add_parser(
        "show",
        help="all specs of one SKU with sources",
        description="Show one SKU's specs, derived figures and sources.",
    )
    show.add_argument("name", help="hardware name, e.g. h100-sxm")
    for parser in (listing, show):
        parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args) -> int:
    from roofline.api import list_hardware, load_hardware
    from roofline.report.catalog import hardware_list, hardware_sheet
    from roofline.report.catalog_json import document, hardware_record

    json_out = args.format == "json"
    if args.hw_command == "list":
        specs = [(name, load_hardware(name)) for name in list_hardware()]
        print(
            document("hardware", [hardware_record(hw) for _, hw in specs])
            if json_out
            else hardware_list(specs)
        )
        return 0
    hw = load_hardware(args.name)
    print(document("hardware", hardware_record(hw)) if json_out else hardware_sheet(hw))
    return 0
