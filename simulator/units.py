"""Unit constants and data-type sizes. SI inside the engine; non-SI only at the edges."""

TERA = 1e12
GIGA = 1e9
MEGA = 1e6
GIB = 2**30
MIB = 2**20
KIB = 2**10

# Bytes per element of each storage/compute format. Sub-byte formats are fractional: an int4
# element is half a byte (two per byte), before any per-group scale overhead.
DTYPE_BYTES = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "int4": 0.5,
    "int2": 0.25,
}

# The tensor-core peak that a GEMM in a given activation format runs at.
COMPUTE_PEAK_KEY = {
    "fp32": "fp32",
    "tf32": "tf32",
    "bf16": "bf16",
    "fp16": "fp16",
    "fp8": "fp8",
    "int8": "int8",
    "fp4": "fp4",
    "int4": "int8",
    "int2": "int8",
}


def dtype_bytes(name: str) -> float:
    """Bytes per element of data type `name` (see DTYPE_BYTES)."""
    return DTYPE_BYTES[name]


# Token counts read from people: `128k` is 128 x 1024 = 131072 tokens, as "128K context" means for
# Llama 3.1 (max_position_embeddings 131072), and `1M` is 1024**2; plain integers as they are.
TOKEN_SUFFIXES = {"": 1, "k": 1024, "m": 1024**2}
TOKEN_COUNT_HELP = "a token count: an integer, or with a K or M suffix (128k = 131072, 1M = 1048576)"


def is_token_field(name: str) -> bool:
    """Whether a field or method parameter counts tokens (so it accepts `128k`): `*_tokens`, `token_budget`."""
    return name.rsplit(".", 1)[-1].endswith("tokens") or name.endswith("token_budget")


def parse_token_count(value):
    """`128k` -> 131072, `1M` -> 1048576, `4096` -> 4096 (K = 1024, M = 1024**2, either case, a
    decimal mantissa allowed when the product is whole: `1.5k` -> 1536). Anything else is returned
    unchanged, for the field's own type check to name."""
    if not isinstance(value, str):
        return value
    text = value.strip().replace("_", "").lower()
    suffix = text[-1:] if text[-1:] in ("k", "m") else ""
    mantissa = text[: len(text) - len(suffix)]
    try:
        number = float(mantissa) if "." in mantissa else int(mantissa)
    except ValueError:
        return value
    count = number * TOKEN_SUFFIXES[suffix]
    if isinstance(count, float) and not (count == count and abs(count) < 1e18 and count == int(count)):
        return value  # not whole, or not finite
    return int(count) if count >= 0 else value
