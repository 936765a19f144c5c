"""Small display components shared by the pages: alerts, KPI cards, tables (a sortable
DataTable with CSV export for results; plain HTML for small key-value tables)."""

from __future__ import annotations

from dash import dash_table, html


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
    """One card per KPI (kpis.kpi_items, kpis.delta_items); a card whose `ok` is false is
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


def _column(key: str, name: str, kind: str) -> dict:
    if kind == "markdown":  # DataTable renders markdown without HTML (its default)
        return {"id": key, "name": name, "type": "text", "presentation": "markdown"}
    return {"id": key, "name": name, "type": kind}


def results_table(
    table_id: str, columns: list, rows: list, highlight: str | None = None, marked=None, **extra
):
    """A results table the user can sort (click a header) and export (the Export button writes
    what is shown as CSV). columns: [(key, header, "numeric" | "text" | "markdown")]; rows: dicts
    keyed by the columns' keys, numbers as numbers so they sort as numbers. `highlight` names a
    column whose "yes" rows are shown bold; `marked` = (column, value): those rows in red."""
    style = [{"if": {"filter_query": f'{{{highlight}}} = "yes"'}, "fontWeight": "600"}] if highlight else []
    if marked:
        column, value = marked
        style.append(
            {
                "if": {"filter_query": f'{{{column}}} = "{value}"'},
                "backgroundColor": "#fef2f2",
                "color": "#991b1b",
            }
        )
    return dash_table.DataTable(
        id=table_id,
        columns=[_column(*c) for c in columns],
        data=rows,
        sort_action="native",
        sort_mode="multi",
        export_format="csv",
        export_headers="display",
        page_action="none",
        style_as_list_view=True,
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "inherit", "fontSize": "13px", "padding": "4px 8px", "textAlign": "left"},
        style_header={"backgroundColor": "#f3f4f6", "fontWeight": "600"},
        style_data_conditional=style,
        **extra,
    )
