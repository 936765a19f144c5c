"""Calibration page: for each profile in hwspecs/calibration/, its provenance and, per op kind
(and per collective), the measured points against the fitted curve with the residuals; for each
validation report in docs/validation/, measured vs predicted.

Static: built when the page is opened, from the folders the app was created with (tests pass
their own folders to `build_layout`).
"""

from __future__ import annotations

import dash
from dash import dcc, html

from roofline.dashboards import figures_calibration, profiles
from roofline.dashboards.components import alert, key_values, table
from roofline.dashboards.settings import settings, user_message

try:
    dash.register_page(
        __name__, path="/calibration", name="Calibration", title="roofline: calibration", order=2
    )
except dash.exceptions.PageError:  # imported outside an app (tests call the functions directly)
    pass

NO_PROFILES = (
    "No calibration profiles yet: run `roofline calibrate` on a GPU to write "
    "hwspecs/calibration/<gpu>.yaml. Until then every simulation uses the datasheet efficiencies."
)


def layout(**_query):
    cfg = settings()
    try:
        return build_layout(cfg["calibration_dir"], cfg["validation_dir"])
    except Exception as exc:
        return html.Div(alert(user_message(exc, "reading the calibration files")), className="page-single")


def _graph(fig):
    return dcc.Graph(figure=fig, className="card", config={"displaylogo": False})


def profile_section(entry: dict):
    children = [html.H3(entry["file"])]
    if entry.get("error"):
        children.append(alert(f"{entry['file']}: {entry['error']}"))
        return html.Section(children, className="profile")
    if entry.get("fields"):
        children.append(key_values(entry["fields"], "fields"))
    for title, items in entry.get("provenance", []):
        children.append(key_values(items, f"provenance: {title}" if title else "provenance"))
    if not entry.get("provenance"):
        children.append(alert("no provenance section", "warning"))
    for title, items in entry.get("sections", []):
        children.append(key_values(items, title))
    if entry.get("notes"):
        children.append(alert(entry["notes"], "info", "Notes"))
    curves = entry.get("curves", [])
    if not curves:
        children.append(html.P("No curves with measured points in this profile."))
    grid = []
    for curve in curves:
        params = key_values(curve["params"]) if curve["params"] else None
        grid.append(html.Div([_graph(figures_calibration.make_fit_figure(curve)), params], className="curve"))
    children.append(html.Div(grid, className="grid"))
    return html.Section(children, className="profile", id=f"profile-{entry['file']}")


def report_section(entry: dict):
    children = [html.H3(entry["file"])]
    if entry.get("title") and entry["title"] != entry["file"].rsplit(".", 1)[0]:
        children.append(html.P(entry["title"], className="note"))
    if entry.get("error"):
        children.append(alert(f"{entry['file']}: {entry['error']}"))
        return html.Section(children, className="profile")
    if entry.get("provenance"):
        children.append(key_values(entry["provenance"], "provenance"))
    if entry.get("summary"):
        children.append(key_values(entry["summary"], "summary (errors relative to measured)"))
    points = entry.get("points", [])
    if not points:
        children.append(html.P("No points with both a measured and a predicted time."))
        return html.Section(children, className="profile")
    children.append(
        _graph(figures_calibration.make_validation_figure({"title": entry["title"], "points": points}))
    )
    rows = [
        [
            p.get("group", ""),
            p["label"],
            f"{p['measured']:.4g}",
            f"{p['predicted']:.4g}",
            f"{(p['predicted'] / p['measured'] - 1) * 100:+.1f}%" if p["measured"] else "-",
        ]
        for p in points
    ]
    children.append(table(["group", "point", "measured (s)", "predicted (s)", "error"], rows))
    return html.Section(children, className="profile")


def build_layout(calibration_dir, validation_dir):
    entries = profiles.load_profiles(calibration_dir)
    reports = profiles.load_validation_reports(validation_dir)
    body = [html.H2("Calibration profiles"), html.P(f"Folder: {calibration_dir}", className="note")]
    if entries:
        body += [profile_section(e) for e in entries]
    else:
        body.append(alert(NO_PROFILES, "info"))
    body += [html.H2("Validation reports"), html.P(f"Folder: {validation_dir}", className="note")]
    if reports:
        body += [report_section(r) for r in reports]
    else:
        body.append(
            alert(
                "No validation reports yet: `roofline validate` on a GPU writes measured vs predicted.",
                "info",
            )
        )
    return html.Div(body, className="page-single", id="calibration-page")
