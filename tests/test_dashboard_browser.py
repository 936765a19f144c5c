"""The dashboard in a real headless Chromium: Debian's /usr/bin/chromium driven by Playwright's
Python API against the app served on a free 127.0.0.1 port (in a thread of this process).

Skipped when chromium or playwright is missing, except where ROOFLINE_REQUIRE_BROWSER=1 (CI, which
installs both): there a missing browser fails. Screenshots of every page go to a temp folder, or
to $ROOFLINE_SCREENSHOT_DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

import roofline
from roofline.dashboards import kpis

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIXTURES = Path(__file__).parent / "fixtures"
TIMEOUT_MS = 20_000
PROFILE = """
profile_id: h100-sxm-synthetic
hardware: h100-sxm
kernel_overhead_s: 4.5e-06
provenance: {device: NVIDIA H100 80GB HBM3 (synthetic test profile), driver: 550.54.15, date: '2025-01-01'}
curves:
  gemm_bf16:
    fit: {e_max: 0.8, x_half: 900.0, p: 1.6}
    residual: 0.03
    points:
      - {x: 256, efficiency: 0.11}
      - {x: 1024, efficiency: 0.46}
      - {x: 4096, efficiency: 0.73}
      - {x: 16384, efficiency: 0.80}
"""


def _missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright; no `playwright install` needed)"
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free port; yields its base URL."""
    from werkzeug.serving import make_server

    from roofline.dashboards.app import create_app

    root = tmp_path_factory.mktemp("dashboard")
    (root / "calibration").mkdir()
    (root / "calibration" / "h100-sxm.yaml").write_text(PROFILE)
    (root / "calibration" / "h200.yaml").write_text(PROFILE.replace("h100-sxm", "h200"))
    (root / "validation").mkdir()
    (root / "validation" / "llama-3.1-8b-h100.json").write_text(
        json.dumps(
            {
                "provenance": {"gpu": "NVIDIA H100 80GB HBM3"},
                "points": [
                    {"name": "prefill 4K", "measured_s": 0.21, "predicted_s": 0.2},
                    {"name": "prefill 32K", "measured_s": 1.9, "predicted_s": 2.05},
                    {"name": "decode step 32K", "measured_s": 0.0071, "predicted_s": 0.0068},
                ],
            }
        )
    )
    app = create_app(root / "calibration", root / "validation", root / "uploads")
    httpd = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser_context():
    missing = _missing()
    if missing:
        if os.environ.get("ROOFLINE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required here but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="roofline-chromium-")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 1000},
            accept_downloads=True,
        )
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("ROOFLINE_SCREENSHOT_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Console:
    """Console errors and uncaught exceptions of a page."""

    def __init__(self, page):
        self.errors = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture
def page(browser_context, server):
    p = browser_context.new_page()
    p.set_default_timeout(TIMEOUT_MS)
    p.console = Console(p)
    yield p
    p.close()


def field(path: str) -> str:
    return f"[id='{json.dumps({'path': path, 'type': 'plan-field'}, separators=(',', ':'))}']"


def method_switch(name: str) -> str:
    return f"[id='{json.dumps({'method': name, 'type': 'plan-method'}, separators=(',', ':'))}'] input"


def kpi(page, key: str) -> str:
    return page.inner_text(f"#kpi-{key}-value")


def open_plan(page, url: str):
    page.goto(url)
    page.wait_for_selector("#kpi-ttft-value")
    page.wait_for_function("() => document.querySelectorAll('#plan-curves .trace').length > 0")


def wait_changed(page, key: str, old: str):
    page.wait_for_function(
        "([key, old]) => { const e = document.getElementById('kpi-' + key + '-value'); return e && e.innerText !== old; }",
        arg=[key, old],
    )


def curve_marker(page):
    """The x of the plan's prompt line on the curves figure."""
    return page.evaluate(
        "() => (document.querySelector('#plan-curves .js-plotly-plot').layout.shapes || [])"
        ".filter(s => s.type === 'line' && s.xref === 'x').map(s => s.x0)"
    )


def test_pages_load_without_console_errors(page, server, shots):
    open_plan(page, server + "/")
    assert kpi(page, "fits") == "yes"
    page.screenshot(path=str(shots / "plan.png"), full_page=True)
    page.click("#nav-compare")
    page.wait_for_selector("#compare-rows")
    page.wait_for_function("() => document.querySelectorAll('#compare-pareto .point').length > 0")
    # the plan on H100, H200 and B200 over 32K..1M tokens, and over the batch
    page.wait_for_function("() => document.querySelectorAll('#compare-range .trace').length > 0")
    page.wait_for_function("() => document.querySelectorAll('#compare-batch .trace').length > 0")
    ticks = page.eval_on_selector_all(
        "#compare-range .xaxislayer-above text", "es => es.map(e => e.textContent)"
    )
    assert "32K" in ticks and "1M" in ticks
    legend = page.eval_on_selector_all("#compare-range .legendtext", "es => es.map(e => e.textContent)")
    assert {"h100-sxm / dense", "h200 / dense", "b200 / dense"} <= set(legend)
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    page.click("#nav-calibration")
    page.wait_for_selector("#calibration-page")
    page.wait_for_function("() => document.querySelectorAll('#calibration-page .js-plotly-plot').length >= 2")
    assert "driver" in page.inner_text("#calibration-page")
    page.screenshot(path=str(shots / "calibration.png"), full_page=True)
    # the index lists both profiles and draws the first; a click on the other draws it instead
    assert page.locator("#profile-index tbody tr").count() == 2
    assert page.locator('[id="profile-h100-sxm.yaml"]').count() == 1
    page.click("#profile-index >> text=h200.yaml")
    page.wait_for_selector('[id="profile-h200.yaml"]')
    assert "profile=h200.yaml" in page.url and page.locator('[id="profile-h100-sxm.yaml"]').count() == 0
    assert page.console.errors == []


# Before each frame is painted (until the KPIs have been painted), every visible sidebar control
# must hold its input: a label painted alone (its dropdown not rendered yet) is recorded.
LABELS_ALONE_JS = """
window.__paintedFrames = 0; window.__labelsAlone = [];
(function frame() {
  const kpi = document.querySelector('#kpi-ttft-value');
  let painted = false;
  for (const c of document.querySelectorAll('.sidebar .control')) {
    if (getComputedStyle(c).visibility !== 'visible') continue;
    painted = true;
    if (!c.querySelector('input, button, select, textarea')) window.__labelsAlone.push(c.innerText);
  }
  window.__paintedFrames += painted;
  if (!(painted && kpi && getComputedStyle(kpi).visibility === 'visible')) requestAnimationFrame(frame);
})();
"""

# Whether the points at 5%, 50% and 95% of an element's width (mid-height) hit the element itself:
# false where something covers it or it lies outside the window.
UNCOVERED_JS = """
(e) => { const r = e.getBoundingClientRect();
  return [0.05, 0.5, 0.95].every(f => e.contains(document.elementFromPoint(r.left + f * r.width, r.top + r.height / 2))); }
"""


def test_sidebar_dropdowns_paint_with_the_page_search_and_sit_on_top(page, server, shots):
    page.add_init_script(LABELS_ALONE_JS)
    open_plan(page, server + "/")
    page.wait_for_function("() => window.__paintedFrames > 0")
    assert page.evaluate("() => window.__labelsAlone") == []
    slots = page.locator(".sidebar .dropdown-slot")
    assert (
        slots.count() >= 8 and page.locator(".sidebar .dropdown-slot .dash-dropdown").count() == slots.count()
    )
    ttft = kpi(page, "ttft")
    page.click(field("model"))
    options = page.locator(".dash-dropdown-content [role=option]")
    options.first.wait_for()
    assert options.count() > 10
    for i in range(options.count()):  # every option whole and uncovered: none under the charts
        options.nth(i).scroll_into_view_if_needed()
        assert options.nth(i).evaluate(UNCOVERED_JS), options.nth(i).inner_text()
    page.keyboard.type("qwen3")  # typing filters (the focus starts on the selected option)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.dash-dropdown-content [role=option]')]"
        ".every(o => o.innerText.includes('qwen3'))"
    )
    names = options.all_inner_texts()
    assert names and all("qwen3" in n for n in names)
    page.screenshot(path=str(shots / "plan-model-menu.png"))
    target = options.filter(has_text="qwen3-30b-a3b")
    box = target.bounding_box()
    target.click(position={"x": box["width"] * 0.9, "y": box["height"] / 2})  # its far end, over the charts
    wait_changed(page, "ttft", ttft)
    assert page.inner_text(field("model")) == "qwen3-30b-a3b"
    page.wait_for_function("() => window.location.search.includes('model=qwen3-30b-a3b')")
    assert page.console.errors == []


# Pairs of overlapping text boxes (figure titles, subplot titles and other annotations) within
# each plot of the page: [plot id, text a, text b].
OVERLAPPING_TITLES_JS = """
() => {
  const out = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const boxes = [...plot.querySelectorAll('.gtitle, .annotation-text-g')]
      .map(e => [e.textContent, e.getBoundingClientRect()]).filter(([t, r]) => t && r.width > 0);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, r] = boxes[i], [b, q] = boxes[j];
      if (r.left < q.right - 1 && q.left < r.right - 1 && r.top < q.bottom - 1 && q.top < r.bottom - 1)
        out.push([plot.parentElement.id, a, b]);
    }
  }
  return out;
}
"""


def test_no_overlapping_titles_at_1024_px(page, server, shots):
    page.set_viewport_size({"width": 1024, "height": 900})
    open_plan(
        page, server + "/?methods=kv_quant&kv_quant.bits=4&parallelism.tp=2&workload.prompt_tokens=32768"
    )
    page.wait_for_function("() => document.querySelectorAll('#plan-breakdown .trace').length > 0")
    assert page.evaluate(OVERLAPPING_TITLES_JS) == []
    page.screenshot(path=str(shots / "plan-1024.png"), full_page=True)
    page.click("#nav-compare")
    page.wait_for_function("() => document.querySelectorAll('#compare-batch .trace').length > 0")
    page.wait_for_function("() => document.querySelectorAll('#compare-pareto .point').length > 0")
    page.fill("#compare-tpot-max", "100")  # seconds, as roofline plan --tpot-max: far right of every point
    page.press("#compare-tpot-max", "Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare-pareto .annotation-text')].some(e => e.textContent.includes('SLA'))"
    )
    assert page.evaluate(OVERLAPPING_TITLES_JS) == []
    page.screenshot(path=str(shots / "compare-1024.png"), full_page=True)
    assert page.console.errors == []


def test_compare_hardware_dropdown_filters_and_sits_on_top(page, server):
    page.add_init_script(LABELS_ALONE_JS)
    page.goto(server + "/compare")
    page.wait_for_function("() => document.querySelectorAll('#compare-pareto .point').length > 0")
    page.wait_for_function("() => window.__paintedFrames > 0")
    assert page.evaluate("() => window.__labelsAlone") == []
    page.click("#compare-hardware")
    page.keyboard.type("mi3")
    options = page.locator(".dash-dropdown-content [role=option]")
    page.wait_for_function(
        "() => { const o = [...document.querySelectorAll('.dash-dropdown-content [role=option]')];"
        " return o.length > 0 && o.every(e => e.innerText.includes('mi3')); }"
    )
    for i in range(options.count()):
        options.nth(i).scroll_into_view_if_needed()
        assert options.nth(i).evaluate(UNCOVERED_JS), options.nth(i).inner_text()
    box = options.first.bounding_box()
    options.first.click(position={"x": box["width"] * 0.9, "y": box["height"] / 2})
    page.keyboard.press("Escape")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare-range .legendtext')].some(e => e.textContent.startsWith('mi3'))"
    )
    assert page.console.errors == []


def test_context_length_updates_kpis_curves_and_url(page, server, shots):
    open_plan(page, server + "/")
    ttft, tpot = kpi(page, "ttft"), kpi(page, "tpot")
    marker = curve_marker(page)
    page.fill(field("workload.prompt_tokens"), "32768")
    page.press(field("workload.prompt_tokens"), "Enter")
    wait_changed(page, "ttft", ttft)
    assert kpi(page, "tpot") != tpot
    page.wait_for_function(
        "() => (document.querySelector('#plan-curves .js-plotly-plot').layout.shapes || [])"
        ".some(s => s.type === 'line' && s.x0 === 32768)"
    )
    assert curve_marker(page) != marker
    page.wait_for_function("() => window.location.search.includes('workload.prompt_tokens=32768')")
    # the URL is the plan: opening it again shows the same numbers
    shown = kpi(page, "ttft")
    open_plan(page, page.url)
    assert page.input_value(field("workload.prompt_tokens")) == "32768"
    assert kpi(page, "ttft") == shown
    assert page.console.errors == []


def test_adding_a_method_changes_tpot_and_memory(page, server, shots):
    open_plan(page, server + "/")
    tpot, memory = kpi(page, "tpot"), page.inner_text("#kpi-fits .kpi-detail")
    page.check(method_switch("kv_quant"))
    wait_changed(page, "tpot", tpot)
    assert page.inner_text("#kpi-fits .kpi-detail") != memory
    page.wait_for_function("() => window.location.search.includes('methods=kv_quant')")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#plan-curves .legendtext')].some(e => e.textContent === 'kv_quant')"
    )
    page.screenshot(path=str(shots / "plan-method-on.png"))
    assert page.console.errors == []


def test_a_plan_that_does_not_fit_is_struck_through_and_the_stack_is_set_against_dense(page, server, shots):
    open_plan(page, server + "/?workload.prompt_tokens=1048576")
    assert kpi(page, "fits") == "no"
    for key in ("ttft", "tpot", "cost"):
        card = page.locator(f"#kpi-{key}")
        assert card.locator(".badge-infeasible").inner_text() == "does not fit"
        assert card.locator(".badge-infeasible").is_visible()
        style = page.eval_on_selector(f"#kpi-{key}-value", "e => getComputedStyle(e).textDecorationLine")
        assert "line-through" in style, key
    assert page.locator("#kpi-max-context .badge-infeasible").count() == 0
    page.wait_for_function(
        "() => [...document.querySelectorAll('#plan-curves .legendtext')].some(e => e.textContent === 'baseline: does not fit')"
    )
    page.screenshot(path=str(shots / "plan-does-not-fit.png"), full_page=True)
    # with a 4-bit KV cache the plan fits; the baseline it is compared with does not
    page.fill(field("workload.prompt_tokens"), "600000")
    page.press(field("workload.prompt_tokens"), "Enter")
    page.wait_for_function("() => window.location.search.includes('workload.prompt_tokens=600000')")
    page.check(method_switch("kv_quant"))
    page.wait_for_selector("#kpi-delta-tpot-value")
    assert kpi(page, "fits") == "yes"
    assert page.locator("#kpi-delta-tpot .badge-infeasible").is_visible()
    assert "the dense baseline does not fit" in page.inner_text("#kpi-delta-tpot")
    assert kpi(page, "delta-memory").startswith("saves ")
    page.screenshot(path=str(shots / "plan-deltas.png"))
    assert page.console.errors == []


def saved_cells(page, column: str) -> list:
    return page.eval_on_selector_all(
        f"#plan-saved-table td[data-dash-column='{column}']", "es => es.map(e => e.innerText.trim())"
    )


def test_saved_plans_table_sorts_and_exports_csv(page, server, tmp_path):
    open_plan(page, server + "/?workload.prompt_tokens=65536")
    page.click("#plan-saved-clear")
    page.click("#plan-save")
    page.wait_for_function(
        "() => document.querySelectorAll('#plan-saved-table td[data-dash-column=plan]').length === 1"
    )
    ttft = kpi(page, "ttft")
    page.fill(field("workload.prompt_tokens"), "16384")
    page.press(field("workload.prompt_tokens"), "Enter")
    wait_changed(page, "ttft", ttft)
    page.click("#plan-save")
    page.wait_for_function(
        "() => document.querySelectorAll('#plan-saved-table td[data-dash-column=plan]').length === 2"
    )
    assert float(saved_cells(page, "tpot_ms")[1]) == pytest.approx(
        float(kpi(page, "tpot").split()[0]), rel=5e-3
    )
    page.click("#plan-saved-table th[data-dash-column='tpot_ms'] .column-header--sort")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#plan-saved-table td[data-dash-column=tpot_ms]')]"
        ".map(e => parseFloat(e.innerText)).every((v, i, a) => i === 0 || a[i - 1] <= v)"
    )
    assert "16,384" in saved_cells(page, "plan")[0]  # the shorter prompt decodes faster
    with page.expect_download() as download:
        page.click("#plan-saved-table .export")
    path = tmp_path / "saved.csv"
    download.value.save_as(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()  # DataTable writes a BOM
    assert lines[0].startswith("plan,fits,TTFT (s),TPOT (ms)") and len(lines) == 3
    # saved in this browser: still there on a new visit
    open_plan(page, server + "/")
    page.wait_for_function(
        "() => document.querySelectorAll('#plan-saved-table td[data-dash-column=plan]').length === 2"
    )
    assert page.console.errors == []


def test_bad_number_shows_the_simulators_message(page, server):
    open_plan(page, server + "/")
    page.fill(field("workload.batch"), "0")
    page.press(field("workload.batch"), "Enter")
    page.wait_for_selector("#plan-alert .alert-error")
    assert page.inner_text("#plan-alert").startswith("workload.batch: must be >= 1, got 0.")
    assert page.console.errors == []


def test_export_then_simulate_gives_the_same_numbers(page, server, tmp_path):
    open_plan(
        page, server + "/?workload.prompt_tokens=65536&workload.batch=2&methods=quest&quest.token_budget=2048"
    )
    with page.expect_download() as download:
        page.click("#plan-export")
    path = tmp_path / "plan.yaml"
    download.value.save_as(path)
    rec = roofline.simulate(yaml.safe_load(path.read_text())).records()[0]
    for item in kpis.kpi_items(rec):
        assert kpi(page, item["key"]) == item["value"], item["key"]
    assert page.console.errors == []


def test_bad_uploads_show_an_error(page, server, shots):
    open_plan(page, server + "/")
    ttft = kpi(page, "ttft")
    page.set_input_files(
        "#plan-upload-config input[type=file]", str(FIXTURES / "not_a_transformer_config.json")
    )
    page.wait_for_selector("#plan-import-alert .alert-error")
    text = page.inner_text("#plan-import-alert")
    assert "not a decoder-only transformer config" in text and "Traceback" not in text
    page.screenshot(path=str(shots / "plan-bad-upload.png"))
    bad = Path(tempfile.mkdtemp()) / "bad.yaml"
    bad.write_text("model: llama-3.1-8b\nhardware: h100-sxm\nworkload: {batch: lots}\n")
    page.set_input_files("#plan-upload-yaml input[type=file]", str(bad))
    page.wait_for_function(
        "() => document.getElementById('plan-import-alert').innerText.includes('workload.batch: must be an integer')"
    )
    assert kpi(page, "ttft") == ttft  # the plan is untouched
    # a good config.json then becomes the model
    page.set_input_files("#plan-upload-config input[type=file]", str(FIXTURES / "tiny_llama_config.json"))
    page.wait_for_function(
        "() => document.getElementById('plan-import-alert').innerText.includes('loaded as model')"
    )
    wait_changed(page, "ttft", ttft)
    assert page.console.errors == []


# --- names with markup are shown literally, never run ----------------------------------------------

XSS_SCENARIO = "<img src=x onerror=alert(7)>"
XSS_MODEL = "<img src=y onerror=window.__pwned=1>"


def _watch_for_script(page) -> list:
    """Dialogs the page opens; the markup under test sets window.__pwned or calls alert()."""
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return dialogs


def test_plot_report_shows_markup_in_names_literally(page, tmp_path):
    from roofline.cli.main import main

    config = tmp_path / f"{XSS_MODEL}.json"
    config.write_text((FIXTURES / "tiny_llama_config.json").read_text())
    scenario = tmp_path / "xss.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "name": XSS_SCENARIO,
                "model": str(config),
                "hardware": "h100-sxm",
                "workload": {"batch": 1, "prompt_tokens": 1024, "output_tokens": 16},
            }
        )
    )
    report = tmp_path / "report.html"
    assert main(["simulate", str(scenario), "--plot", str(report)]) == 0
    html = report.read_text()
    assert XSS_SCENARIO not in html.split("<script")[0]  # the page's own title and heading are escaped
    dialogs = _watch_for_script(page)
    page.goto(report.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .trace').length > 0")
    assert page.inner_text("h1") == f"roofline: {XSS_SCENARIO}"
    assert page.title() == f"roofline: {XSS_SCENARIO}"
    title = page.text_content(".js-plotly-plot .gtitle")
    assert f"Roofline: {XSS_MODEL} on" in title
    page.wait_for_timeout(300)  # let an injected onerror fire if there were one
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == []
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0


def test_dashboard_shows_markup_in_names_literally(page, server):
    dialogs = _watch_for_script(page)
    query = "?name=" + XSS_SCENARIO.replace(" ", "%20") + "&workload.batch=" + XSS_MODEL.replace(" ", "%20")
    open_plan(page, server + "/" + query)
    text = page.inner_text("#plan-import-alert")
    assert XSS_MODEL in text  # the bad value is quoted as text in the URL problems
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == []
    assert page.evaluate("() => document.querySelectorAll('main img, aside img').length") == 0


def test_clicking_a_roofline_op_shows_its_layers(page, server):
    open_plan(page, server + "/")
    page.wait_for_selector("#plan-layers .annotation-text")  # before a click: what to do
    assert "click an op" in page.inner_text("#plan-layers")
    # the GEMM trace: its ops run in every decoder layer
    index = page.evaluate(
        "() => document.querySelector('#plan-roofline .js-plotly-plot').data"
        ".findIndex(t => t.name === 'gemm' && t.customdata)"
    )
    assert index >= 0
    trace = page.locator("#plan-roofline .scatterlayer .trace").nth(index)
    box = trace.locator(".points path").first.bounding_box()
    # Plotly takes clicks on its drag layer at the point's position, not on the marker element
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => (document.querySelector('#plan-layers .gtitle') || {}).textContent?.includes('time per layer')"
    )
    assert "gqa+dense" in page.inner_text("#plan-layers")  # Llama-3.1-8B: one group of 32 layers
    assert page.console.errors == []


def serve_field(path: str) -> str:
    return f"[id='{json.dumps({'path': path, 'type': 'serve-field'}, separators=(',', ':'))}']"


def test_serve_page_rate_changes_kpis_curve_and_url(page, server, shots):
    page.goto(server + "/")
    page.wait_for_selector("#kpi-ttft-value")
    page.click("#nav-serve")
    page.wait_for_selector("#kpi-serve-throughput-value")
    page.wait_for_function("() => document.querySelectorAll('#serve-timeseries .trace').length > 0")
    page.wait_for_function("() => document.querySelectorAll('#serve-rate-curve .trace').length > 0")
    assert "p99" in page.inner_text("#serve-percentile-table")
    knee = page.evaluate(
        "() => [...document.querySelectorAll('#serve-rate-curve .annotation-text')].map(e => e.textContent)"
    )
    assert any(t.startswith("knee:") for t in knee), knee
    page.screenshot(path=str(shots / "serve.png"), full_page=True)
    throughput, slo = kpi(page, "serve-throughput"), kpi(page, "serve-slo")
    page.fill(serve_field("serving.arrival.rate_per_s"), "30")
    page.press(serve_field("serving.arrival.rate_per_s"), "Enter")
    wait_changed(page, "serve-throughput", throughput)
    assert kpi(page, "serve-slo") != slo
    page.wait_for_function("() => window.location.search.includes('serving.arrival.rate_per_s=30')")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#serve-rate-curve .annotation-text')]"
        ".some(e => e.textContent.startsWith('this rate: 30'))"
    )
    # the URL is the setting: opening it again shows the same numbers
    shown = kpi(page, "serve-throughput")
    page.goto(page.url)
    page.wait_for_selector("#kpi-serve-throughput-value")
    assert page.input_value(serve_field("serving.arrival.rate_per_s")) == "30"
    assert kpi(page, "serve-throughput") == shown
    # a bad number gets the simulator's message
    page.fill(serve_field("serving.requests"), "5000")
    page.press(serve_field("serving.requests"), "Enter")
    page.wait_for_function("() => (document.querySelector('#serve-alert') || {}).innerText.includes('2,000')")
    page.screenshot(path=str(shots / "serve-error.png"), full_page=True)
    assert page.console.errors == []
