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
