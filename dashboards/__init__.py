"""The Dash planning dashboard (`roofline dashboard`): Plan, Compare and Calibration pages.

`app.create_app()` builds the app; `state` maps controls <-> scenario <-> URL, `evaluate` asks the
simulator, `figures` turns results into plotly figures, `profiles` reads calibration files. Dash is
imported only here, never on the `roofline simulate` path.
"""
