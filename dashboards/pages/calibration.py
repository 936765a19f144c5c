"""Calibration page: an index of the profiles in hwspecs/calibration/ (GPU, framework, source,
device, how many fits each keeps) and, for the one chosen (`/calibration?profile=<file>`, the first
readable profile by default), its provenance and, per op kind (and per collective), the measured
points against the fitted curve with the residuals; for each validation report in
docs/validation/, measured vs predicted.

One profile is drawn at a time: the 18 shipped profiles hold about 500 fits, 8.5 MB of figures
that took 9 s to build on every visit when the page drew them all.

Static: built when the page is opened, from the folders the app was created with (tests pass
their own folders to `build_layout`). `profile` only selects among the files listed: it never
names a path to open.
"""

from __future__ import annotations

from urllib.parse import quote

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


def layout(profile=None, **_query):
    cfg = settings()
    try:
        return build_layout(cfg["calibration_dir"], cfg["validation_dir"], profile)
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


def _joined(provenance: dict, *keys) -> str:
    return " ".join(str(provenance[k]) for k in keys if k in provenance)


def profile_index(entries: list, shown: str | None):
    """One row per profile file: what it calibrates and where it came from, the file a link that
    draws it (the one drawn is marked)."""
    rows, classes = [], []
    for e in entries:
        if e.get("error"):
            rows.append([e["file"], "", "", "", "", f"cannot be read: {e['error']}"])
        else:
            top = dict(e["provenance"][0][1]) if e.get("provenance") else {}  # the profile's own
            link = dcc.Link(e["file"], href=f"/calibration?profile={quote(e['file'])}", refresh=False)
            hardware = dict(e.get("fields", [])).get("hardware", "")
            fits = str(len(e.get("curves", [])))
            rows.append(
                [
                    link,
                    hardware,
                    _joined(top, "framework", "framework_version"),
                    _joined(top, "source", "source_version"),
                    _joined(top, "device"),
                    fits,
                ]
            )
        classes.append("selected" if e["file"] == shown else "")
    return table(
        ["profile", "hardware", "framework", "source", "device", "fits"], rows, classes, "profile-index"
    )


def _chosen(entries: list, profile) -> tuple:
    """(entry to draw or None, a message when `profile` names no listed file)."""
    readable = [e for e in entries if not e.get("error")]
    if not profile:
        return (readable[0] if readable else None), None
    for e in entries:
        if e["file"] == profile:
            return e, None
    names = ", ".join(e["file"] for e in entries)
    return (
        readable[0] if readable else None
    ), f"profile={str(profile)[:80]!r}: no such profile here; listed: {names}"


def build_layout(calibration_dir, validation_dir, profile=None):
    entries = profiles.load_profiles(calibration_dir)
    reports = profiles.load_validation_reports(validation_dir)
    body = [html.H2("Calibration profiles"), html.P(f"Folder: {calibration_dir}", className="note")]
    if entries:
        entry, problem = _chosen(entries, profile)
        if problem:
            body.append(alert(problem, "warning"))
        body.append(profile_index(entries, entry["file"] if entry else None))
        if len(entries) > 1:
            body.append(
                html.P("Choose a profile above to draw its fits; one is drawn at a time.", className="note")
            )
        if entry is not None:
            body.append(profile_section(entry))
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
