"""The one-line form of a scenario, shared by `simulate`, `compare` and `plan`:

    roofline simulate --model llama-3.1-70b --hardware h100-sxm --gpus 8 --tp 8 --prompt 128k --output 1k \\
        --method kv_quant:bits=4 --method quest:token_budget=4k

Each flag sets one scenario field (its help is the field's own help text); a scenario file, when
given too, is read first and the flags override it, then `--set` overrides both. `--method
NAME:KEY=VALUE,KEY=VALUE` (repeatable) replaces the file's methods list; its name and parameter
names are checked against the methods registry here, its values by the method's own validation.
Token counts take K = 1024 and M = 1024**2 suffixes (`units.parse_token_count`).
"""

from __future__ import annotations

from roofline.report.catalog import field_help

COMMAND_LINE = "command line"  # the scenario's label (errors, records' `scenario`) when no file is given

# flag -> (field path, metavar); `layout` flags are left out where the command searches layouts itself.
FIELD_FLAGS = {
    "--model": ("model", "NAME"),
    "--hardware": ("hardware", "NAME"),
    "--gpus": ("gpus", "N"),
    "--tp": ("parallelism.tp", "N"),
    "--pp": ("parallelism.pp", "N"),
    "--cp": ("parallelism.cp", "N"),
    "--dp": ("parallelism.dp", "N"),
    "--ep": ("parallelism.ep", "N"),
    "--batch": ("workload.batch", "N"),
    "--prompt": ("workload.prompt_tokens", "TOKENS"),
    "--output": ("workload.output_tokens", "TOKENS"),
}
LAYOUT_FLAGS = ("--gpus", "--tp", "--pp", "--cp", "--dp", "--ep")

TOKENS_EPILOG = (
    "Token counts (--prompt, --output, *_tokens fields) are integers or take a K or M suffix: "
    "128k = 128 x 1024 = 131072 (what a '128K context' model such as Llama 3.1 holds), 1M = 1048576. "
    "TTFT is the time to the first token of the whole batch: with --batch N > 1 it is the prefill of "
    "all N prompts, not one request's wait (a request-level serving simulation gives that)."
)


def _dest(flag: str) -> str:
    return "field_" + flag.lstrip("-").replace("-", "_")


def add_scenario_arguments(p, *, layout: bool = True, skip: tuple = (), scenario_help: str = "") -> None:
    """The optional scenario file, one flag per field of FIELD_FLAGS (less the layout flags when
    `layout` is false, and any in `skip`), --method and --set."""
    p.add_argument(
        "scenario",
        nargs="?",
        help=scenario_help
        or "scenario YAML file (see scenarios/); optional when --model, --hardware and --prompt are given",
    )
    group = p.add_argument_group("one-line scenario (each flag overrides the file's field)")
    for flag, (path, metavar) in FIELD_FLAGS.items():
        if flag in skip or (not layout and flag in LAYOUT_FLAGS):
            continue
        help_text = field_help(path).replace("%", "%%")
        group.add_argument(flag, dest=_dest(flag), metavar=metavar, help=f"{path}: {help_text}")
    group.add_argument(
        "--method",
        dest="method_flags",
        action="append",
        default=[],
        metavar="NAME[:KEY=VALUE,...]",
        help="a long-context method and its parameters, e.g. kv_quant:bits=4 or quest:token_budget=4k "
        "(repeatable; replaces the file's methods: list; `roofline methods NAME` lists the parameters)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. --set workload.batch=8, or sweep one, e.g. "
        "--set sweep.hardware=[h100-sxm,h200] (repeatable; VALUE is read as YAML; applied after the flags)",
    )


def _problem(text: str):
    from roofline.api import ScenarioError

    return ScenarioError([text])


def flag_value(flag: str, path: str, text: str):
    """A flag's text as its field's type: a token count, an integer, or a name."""
    from roofline.api import SCHEMA, TOKEN_COUNT_HELP, is_token_field, parse_token_count

    kind = SCHEMA[path].kind
    if kind != "int":
        return text
    value = parse_token_count(text) if is_token_field(path) else text
    if isinstance(value, int):
        return value
    try:
        return int(text)
    except ValueError:
        what = TOKEN_COUNT_HELP if is_token_field(path) else "an integer"
        hint = "; to write the output to a file use -o/--output-file" if flag == "--output" else ""
        raise _problem(f"{flag} {text!r}: {path} must be {what}{hint}") from None


def parse_method_flag(text: str) -> dict:
    """`quest:token_budget=4k,page_size=16` -> {'name': 'quest', 'token_budget': '4k', 'page_size': 16}.
    The name and parameter names are checked against the registry (with did-you-mean); values are
    read as YAML scalars and checked by the method's own validation."""
    from roofline.api import REGISTRY, ScenarioError, did_you_mean, parse_override

    name, _, rest = text.partition(":")
    name = name.strip()
    if name not in REGISTRY:
        raise _problem(
            f"--method {text}: unknown method {name!r}.{did_you_mean(name, REGISTRY)} Valid: {', '.join(REGISTRY)}"
        )
    params = REGISTRY[name].params
    spec: dict = {"name": name}
    for item in [s for s in rest.split(",") if s.strip()]:
        if "=" not in item:
            raise _problem(
                f"--method {text}: {item.strip()!r} is not KEY=VALUE; e.g. --method {name}:"
                + ",".join(f"{k}=..." for k in list(params)[:2])
            )
        key, value = parse_override(item)
        if key not in params:
            raise _problem(
                f"--method {text}: {name} has no parameter {key!r}.{did_you_mean(key, params)} "
                f"Valid: {', '.join(params) or 'none'}"
            )
        spec[key] = value
    _, problems = REGISTRY[name].parse(spec, f"--method {name}")  # values: the method's own checks
    if problems:
        raise ScenarioError(problems)
    return spec


def apply_flags(doc: dict, args) -> dict:
    """The scenario mapping with the one-line flags applied (in place; returned)."""
    from roofline.api import set_path

    for flag, (path, _) in FIELD_FLAGS.items():
        text = getattr(args, _dest(flag), None)
        if text is not None:
            set_path(doc, path, flag_value(flag, path, text))
    if args.method_flags:
        doc["methods"] = [parse_method_flag(t) for t in args.method_flags]
    return doc


def scenario_doc(args) -> tuple:
    """(scenario mapping, label for its messages, input files) from the optional file and the flags,
    before `--set`. Without a file, --model and --hardware are needed; a prompt length always is."""
    from roofline.api import read_scenario_file

    if args.scenario:
        doc, where = read_scenario_file(args.scenario), args.scenario
        if not isinstance(doc, dict):
            raise _problem(f"{args.scenario}: a scenario must be a YAML mapping of fields")
        inputs = (args.scenario,)
    else:
        set_paths = {o.split("=", 1)[0].strip().removeprefix("sweep.") for o in args.overrides}
        missing = [
            f
            for f in ("--model", "--hardware")
            if getattr(args, _dest(f), None) is None and f[2:] not in set_paths
        ]
        if missing:
            raise _problem(
                f"give a scenario file, or the scenario as flags: {' and '.join(missing)} missing "
                "(e.g. --model llama-3.1-8b --hardware h100-sxm --prompt 128k)"
            )
        doc, where, inputs = {}, COMMAND_LINE, ()
    apply_flags(doc, args)
    return doc, where, inputs


def load(doc: dict, overrides, where: str):
    """The validated scenario (`roofline.api.load_scenario`), a missing prompt length named with
    the flag that gives it."""
    from roofline.api import ScenarioError, load_scenario

    try:
        return load_scenario(doc, overrides, name=where)
    except ScenarioError as exc:
        missing = f"{where}: missing required field 'workload.prompt_tokens'"
        problems = [
            f"{where}: no prompt length: give --prompt TOKENS (e.g. --prompt 128k) or "
            "workload.prompt_tokens in the scenario file"
            if str(p).startswith(missing)
            else p
            for p in exc.problems
        ]
        raise ScenarioError(problems) from None


def changed_fields(args) -> str:
    """The flags and --set overrides applied over a scenario file, as typed, for the table's header."""
    parts = [
        f"{flag} {getattr(args, _dest(flag))}"
        for flag in FIELD_FLAGS
        if getattr(args, _dest(flag), None) is not None
    ]
    parts += [f"--method {t}" for t in args.method_flags]
    parts += [f"--set {t}" for t in args.overrides]
    return " ".join(parts)
