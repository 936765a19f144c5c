"""`roofline models list|show NAME`: the model zoo (or any config.json) with sizes and layer kinds."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list zoo models or show one's shapes",
        description="List zoo models, or show one model's parameters, KV bytes per token and layer kinds.",
    )
    s = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = s.add_parser("list", help="one line per zoo model", description="List the zoo models.")
    show = s.add_parser(
        "show", help="one model's sizes", description="Show a zoo model or a Hugging Face config.json."
    )
    show.add_argument("name", help="zoo name (e.g. llama-3.1-8b) or path to a config.json")
    show.add_argument(
        "--kv-dtype", default="bf16", help="KV-cache format for the bytes-per-token figure (default bf16)"
    )
    for parser in (listing, show):
        parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args) -> int:
    from roofline.api import DTYPE_BYTES, ScenarioError, list_models, load_model, zoo_index
    from roofline.report.catalog import model_list, model_sheet
    from roofline.report.catalog_json import document, model_record

    json_out = args.format == "json"
    if args.models_command == "list":
        models = [(name, load_model(name)) for name in list_models()]
        if json_out:
            zoo = zoo_index()
            print(document("models", [model_record(n, m, zoo.get(n), 2.0, "bf16") for n, m in models]))
        else:
            print(model_list(models))
        return 0
    if args.kv_dtype not in DTYPE_BYTES:
        raise ScenarioError([f"--kv-dtype {args.kv_dtype!r}: valid: {', '.join(DTYPE_BYTES)}"])
    m = load_model(args.name)
    from pathlib import Path

    # a zoo model by any of its names; a local folder or file named like one is not that model
    entry = None if Path(args.name).exists() else zoo_index().get(m.name)
    kv_bytes = DTYPE_BYTES[args.kv_dtype]
    if json_out:
        print(document("model", model_record(args.name, m, entry, kv_bytes, args.kv_dtype)))
    else:
        print(model_sheet(m, entry, kv_bytes, args.kv_dtype))
    return 0
