"""The Dash planning dashboard (`roofline dashboard`): Plan, Compare, Serve and Calibration pages.

`app.create_app()` builds the app; `state` maps controls <-> scenario <-> URL, `evaluate` asks the
simulator, `figures` turns results into plotly figures, `profiles` reads calibration files; the
Serve page's are `serve_state`, `evaluate_serve` (`roofline.serve`) and `figures_serve`. Dash is
imported only here, never on the `roofline simulate` path.
"""
