"""Small display components shared by the pages: alerts, KPI cards, tables."""

from __future__ import annotations

from dash import html


def alert(messages, kind: str = "error", title: str | None = None):
    """A box listing messages (one problem per line), or None when there are none.
    kind: error | warning | info."""
    if isinstance(messages, str):
        messages = [messages]
    lines = [line for m in messages or [] for line in str(m).splitlines() if line.strip()]
    if not lines:
        return None
    children = [html.Strong(title)] if title else []
    children.append(html.Ul([html.Li(line) for line in lines]) if len(lines) > 1 else html.Div(lines[0]))
    return html.Div(children, className=f"alert alert-{kind}", role="alert")


def kpi_cards(items: list):
    """One card per KPI (figures.kpi_items, figures.delta_items); a card whose `ok` is false is
    marked, and an `infeasible` one (a plan that does not fit) is struck through and badged."""
    cards = []
    for item in items:
        infeasible = item.get("infeasible", False)
        children = [
            html.Div(item["label"], className="kpi-label"),
            html.Div(item["value"], className="kpi-value", id=f"kpi-{item['key']}-value"),
            html.Div(item["detail"], className="kpi-detail"),
        ]
        if infeasible:
            children.append(html.Span("does not fit", className="badge-infeasible"))
        cls = "kpi" + ("" if item["ok"] else " kpi-bad") + (" kpi-infeasible" if infeasible else "")
        cards.append(html.Div(children, className=cls, id=f"kpi-{item['key']}"))
    return cards


def table(head: list, rows: list, row_classes: list | None = None, table_id: str | None = None):
    """A plain HTML table; rows are lists of cell values."""
    row_classes = row_classes or [""] * len(rows)
    extra = {"id": table_id} if table_id else {}
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in head])),
            html.Tbody(
                [html.Tr([html.Td(c) for c in row], className=cls) for row, cls in zip(rows, row_classes)]
            ),
        ],
        className="data-table",
        **extra,
    )


def key_values(items: list, caption: str | None = None):
    """A two-column table of (key, value) pairs."""
    return html.Table(
        ([html.Caption(caption)] if caption else []) + [html.Tr([html.Th(k), html.Td(v)]) for k, v in items],
        className="kv-table",
    )
