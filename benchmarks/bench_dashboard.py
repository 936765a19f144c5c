"""Speed of the Plan page: one scenario's update (KPIs, roofline, time and memory breakdowns) and
the context-length curves (one 1,000-point sweep per stack), server side; then the served
dashboard under load.

Targets (issue 7): < 100 ms for the update of one scenario, < 500 ms for a 1,000-point curve.
Each figure is the median wall time of the callback function plus the JSON encoding of its
output (what Dash does before answering), after a warm-up call.

Under load (issue 16: 50 concurrent Plan updates, p95 <= 1 s on a 2-core machine): starts
`roofline dashboard` on a free loopback port (its default workers), then `--clients` loopback
clients each POST one Plan update to /_dash-update-component at once, as the page does; prints
p50/p95/max latency and errors for the same plan (a shared link) and for as many different plans,
then the time an alias-bomb upload takes to be refused while another wave of updates runs.
Requests are bounded (one each, 60 s timeout). Prints figures; asserts nothing.

    python benchmarks/bench_dashboard.py [--repeats 20] [--clients 50] [--workers N] [--no-load]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import plotly.utils

from roofline.dashboards import codec_scenario, evaluate, state
from roofline.dashboards.pages import plan


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: model and hardware loading, numpy and plotly imports
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        json.dumps(out, cls=plotly.utils.PlotlyJSONEncoder)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


# --- under load ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple:
    """(status, body) of one loopback request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def plan_body(dep: dict, values: dict) -> bytes:
    """The JSON a browser POSTs for a Plan update showing `values`."""
    fv, fi, mv, mi, pv, pi = plan.callback_args(values)
    inputs = [
        [{"id": i, "property": "value", "value": v} for i, v in zip(ids, vals)]
        for ids, vals in ((fi, fv), (mi, mv), (pi, pv))
    ]
    ids = [[{"id": i, "property": "id", "value": i} for i in lst] for lst in (fi, mi, pi)]
    outputs = [
        {"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]}
        for part in dep["output"].strip(".").split("...")
    ]
    body = {"output": dep["output"], "outputs": outputs, "inputs": inputs, "state": ids, "changedPropIds": []}
    return json.dumps(body).encode()


def upload_body(dep: dict, text: str) -> bytes:
    fv, fi, mv, mi, pv, pi = plan.callback_args(dict(state.DEFAULTS))
    inputs = [
        [{"id": i, "property": "value", "value": v} for i, v in zip(ids, vals)]
        for ids, vals in ((fi, fv), (mi, mv), (pi, pv))
    ]
    ids = [[{"id": i, "property": "id", "value": i} for i in lst] for lst in (fi, mi, pi)]
    outputs = [[{"id": i["id"], "property": "value"} for i in lst] for lst in inputs]
    outputs += [{"id": {"path": "model", "type": "plan-field"}, "property": "options"}]
    outputs += [{"id": "plan-import-alert", "property": "children"}]
    data = {
        "kind": "scenario",
        "filename": "bomb.yaml",
        "contents": "data:text/yaml;base64," + base64.b64encode(text.encode()).decode(),
    }
    body = {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": [{"id": "plan-upload-store", "property": "data", "value": data}],
        "state": [*inputs, *ids],
        "changedPropIds": ["plan-upload-store.data"],
    }
    return json.dumps(body).encode()


def alias_bomb(levels: int = 9) -> str:
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]\n"
    return text


def wave(port: int, bodies: list) -> tuple:
    """POST every body at once (one thread each); (sorted latencies in s, error descriptions)."""
    latencies, errors = [], []
    start = threading.Barrier(len(bodies))

    def one(body):
        start.wait()
        t0 = time.perf_counter()
        try:
            status, out = request(port, "POST", "/_dash-update-component", body)
            ok = status == 200 and b"kpi-ttft-value" in out
            if not ok:
                errors.append(f"HTTP {status}: {out[:120]!r}")
        except OSError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return sorted(latencies), errors


def pct(xs: list, q: float) -> float:
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def report(label: str, latencies: list, errors: list) -> None:
    print(
        f"  {label:<48} p50 {pct(latencies, 0.5) * 1e3:6.0f} ms   p95 {pct(latencies, 0.95) * 1e3:6.0f} ms   "
        f"max {latencies[-1] * 1e3:6.0f} ms   errors {len(errors)}   (target p95 <= 1000 ms, 0 errors)"
    )
    for e in errors[:3]:
        print(f"    {e}")


def under_load(clients: int, workers: int | None) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "roofline.cli.main", "dashboard", "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = server.stdout.readline().strip()
        deadline = time.time() + 60
        while True:
            try:
                if request(port, "GET", "/")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                print(f"  the server did not start: {banner}")
                return
            time.sleep(0.2)
        dep = next(
            d
            for d in json.loads(request(port, "GET", "/_dash-dependencies")[1])
            if "plan-alert.children" in d["output"]
        )
        up = next(
            d
            for d in json.loads(request(port, "GET", "/_dash-dependencies")[1])
            if "plan-import-alert.children" in d["output"]
        )
        print(f"\nUnder load, {os.cpu_count()} cores, {banner}")
        same = plan_body(dep, dict(state.DEFAULTS))
        wave(port, [same] * 4)  # warm-up: each worker loads its model and hardware
        report(f"{clients} concurrent updates, same plan", *wave(port, [same] * clients))
        distinct = [
            plan_body(dep, dict(state.DEFAULTS, **{"workload.prompt_tokens": 4096 + 1024 * i}))
            for i in range(clients)
        ]
        report(f"{clients} concurrent updates, {clients} different plans", *wave(port, distinct))
        bomb = upload_body(up, alias_bomb())
        result: dict = {}

        def send_bomb():
            t0 = time.perf_counter()
            status, out = request(port, "POST", "/_dash-update-component", bomb)
            result.update(status=status, refused=b"aliases expand" in out, s=time.perf_counter() - t0)

        bomber = threading.Thread(target=send_bomb)
        bomber.start()
        others = [
            plan_body(dep, dict(state.DEFAULTS, **{"workload.prompt_tokens": 5000 + 1024 * i}))
            for i in range(clients)
        ]
        lat, errs = wave(port, others)
        bomber.join(timeout=120)
        print(
            f"  alias-bomb upload ({len(alias_bomb())} bytes, 10^9 elements): HTTP {result.get('status')}, "
            f"refused {result.get('refused')}, in {result.get('s', float('nan')) * 1e3:.0f} ms"
        )
        report(f"{clients} different plans beside the bomb", lat, errs)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50, help="concurrent loopback clients (default 50)")
    parser.add_argument("--workers", type=int, default=None, help="server workers (default: the dashboard's)")
    parser.add_argument("--no-load", action="store_true", help="skip the served-dashboard load test")
    args = parser.parse_args()

    base = dict(state.DEFAULTS)
    stacked = dict(base, methods=[state.full_method({"name": "kv_quant", "bits": 4})])
    print(
        f"Plan page, {base['model']} on {base['hardware']}, prompt {base['workload.prompt_tokens']:,} tokens:"
    )
    for label, values in (("baseline", base), ("with kv_quant", stacked)):
        args_ = plan.callback_args(values)
        t = timed(lambda a=args_: plan.update_plan(*a), args.repeats)
        print(f"  {'update of one scenario (' + label + ')':<48} {t * 1e3:7.1f} ms   (target < 100 ms)")
    doc = codec_scenario.to_scenario(base)
    n = len(evaluate.curve_prompts(doc))
    t = timed(lambda: evaluate.context_curves(doc), args.repeats)
    print(f"  {f'one {n}-point context sweep (simulate only)':<48} {t * 1e3:7.1f} ms")
    for label, values in (("baseline", base), ("baseline + kv_quant", stacked)):
        args_ = plan.callback_args(values)
        t = timed(lambda a=args_: plan.update_curves(*a), args.repeats)
        print(f"  {f'{n}-point curves callback ({label})':<48} {t * 1e3:7.1f} ms   (target < 500 ms)")
    if not args.no_load:
        under_load(args.clients, args.workers)


if __name__ == "__main__":
    main()
