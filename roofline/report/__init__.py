"""The report layer the faces share (CLI, dashboard, profilers): display formatting (`format`),
text tables and CSV of results (`tables`), text views of the hardware, model and method registries
(`catalog`), plotly figures (`figures`, plotly imported lazily), the one parser
of method stacks (`stacks`) and the one reader of calibration profiles for faces (`profiles`).

It reads simulator results and calls the public API; it never imports a face.
"""
