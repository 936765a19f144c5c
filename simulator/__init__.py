"""The analytical engine: specs as frozen dataclasses and pure cost functions over numpy arrays.

Nothing here reads files, imports torch/triton/dash, or touches a GPU; loaders live in
`roofline.hwspecs` and `roofline.models`, presentation in `roofline.cli`.
"""
