"""The dashboard against hostile clients, over HTTP (the Flask test client of the app's server):
crafted callback requests naming server files, uploads that try to escape or overwrite, YAML
tags and bombs, oversized input, and a few requests in parallel. No timed assertions."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from roofline.dashboards import state, uploads
from roofline.dashboards.app import create_app
from roofline.dashboards.pages import plan

SECRET_JSON = "SECRET-JSON-7f3a"
SECRET_YAML = "SECRET-YAML-9c1e"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def secrets(tmp_path) -> dict:
    """A JSON and a YAML file elsewhere on the server, each with a value the server must not echo."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    js = folder / "secret.json"
    js.write_text(
        json.dumps({"architectures": [SECRET_JSON], "model_type": SECRET_JSON, "api_key": SECRET_JSON})
    )
    ym = folder / "secret.yaml"
    ym.write_text(f"hardware: {SECRET_YAML}\npassword: {SECRET_YAML}\ncurves: {SECRET_YAML}\n")
    return {"json": js, "yaml": ym}


def dependency(client, output: str) -> dict:
    deps = client.get("/_dash-dependencies").get_json()
    return next(d for d in deps if output in d["output"].strip(".").split("..."))


def outputs_of(dep: dict) -> list:
    out = []
    for part in dep["output"].strip(".").split("..."):
        cid, prop = part.rsplit(".", 1)
        out.append({"id": json.loads(cid) if cid.startswith("{") else cid, "property": prop})
    return out if dep["output"].startswith("..") else out[0]


def control_lists(values: dict) -> tuple:
    fv, fi, mv, mi, pv, pi = plan.callback_args(values)
    inputs = [
        [{"id": i, "property": "value", "value": v} for i, v in zip(ids, vals)]
        for ids, vals in ((fi, fv), (mi, mv), (pi, pv))
    ]
    ids = [[{"id": i, "property": "id", "value": i} for i in lst] for lst in (fi, mi, pi)]
    return inputs, ids


def post_plan(client, values: dict, output: str = "plan-alert.children"):
    """A Plan update as a browser (or any page on the machine) would POST it."""
    dep = dependency(client, output)
    return client.post("/_dash-update-component", json=plan_body(dep, *control_lists(values)))


def plan_body(dep: dict, inputs: list, ids: list) -> dict:
    return {
        "output": dep["output"],
        "outputs": outputs_of(dep),
        "inputs": inputs,
        "state": ids,
        "changedPropIds": [],
    }


def post_upload(client, data: dict):
    dep = dependency(client, "plan-import-alert.children")
    inputs, ids = control_lists(dict(state.DEFAULTS))
    outputs = [[{"id": i["id"], "property": "value"} for i in lst] for lst in inputs]
    outputs += [{"id": {"path": "model", "type": "plan-field"}, "property": "options"}]
    outputs += [{"id": "plan-import-alert", "property": "children"}]
    body = {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": [{"id": "plan-upload-store", "property": "data", "value": data}],
        "state": [*inputs, *ids],
        "changedPropIds": ["plan-upload-store.data"],
    }
    return client.post("/_dash-update-component", json=body)


def data_url(raw: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(raw).decode()


def with_draft(model: str) -> dict:
    spec = state.full_method(
        {"name": "speculative", "draft_model": model, "draft_tokens": 4, "acceptance_rate": 0.7}
    )
    return dict(state.DEFAULTS, methods=[spec])


# --- crafted callback requests never open a server path ---------------------------------------------


@pytest.mark.parametrize(
    "make_values",
    [
        lambda s: dict(state.DEFAULTS, model=str(s["json"])),
        lambda s: dict(state.DEFAULTS, model="upload:../elsewhere/secret"),
        lambda s: dict(state.DEFAULTS, calibration=str(s["yaml"])),
        lambda s: with_draft(str(s["json"])),
    ],
    ids=["model", "upload-traversal", "calibration", "draft_model"],
)
@pytest.mark.parametrize("output", ["plan-alert.children", "plan-curves.figure"])
def test_crafted_plan_update_opens_no_server_path(app, secrets, opened, make_values, output):
    client = app.server.test_client()
    dependency(client, output)  # warm the dependency list before watching opens
    opened.clear()
    resp = post_plan(client, make_values(secrets), output)
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert SECRET_JSON not in body and SECRET_YAML not in body
    assert not any("elsewhere" in p or "secret" in p for p in opened), opened
    assert "not a zoo model" in body or "calibration folder" in body or "no longer on this server" in body


def test_crafted_upload_scenario_opens_no_server_path(app, secrets, opened):
    client = app.server.test_client()
    for text in (
        f"model: {secrets['json']}\nhardware: h100-sxm\n",
        f"model: llama-3.1-8b\nhardware: h100-sxm\ncalibration: {secrets['yaml']}\n",
        f"model: llama-3.1-8b\nhardware: h100-sxm\nsweep: {{model: {secrets['json']}}}\n",
        "model: llama-3.1-8b\nhardware: h100-sxm\nmethods:\n"
        f"  - {{name: speculative, draft_model: {secrets['json']}, draft_tokens: 4, acceptance_rate: 0.7}}\n",
    ):
        opened.clear()
        data = {"kind": "scenario", "filename": "x.yaml", "contents": data_url(text.encode())}
        resp = post_upload(client, data)
        assert resp.status_code == 200
        body = resp.get_data(as_text=True)
        assert SECRET_JSON not in body and SECRET_YAML not in body
        assert "Could not use x.yaml" in body
        assert not any("elsewhere" in p for p in opened), opened


def test_zoo_and_uploaded_models_still_work(app):
    client = app.server.test_client()
    resp = post_plan(client, dict(state.DEFAULTS, **{"workload.prompt_tokens": 4096}))
    assert resp.status_code == 200 and "kpi-ttft-value" in resp.get_data(as_text=True)
    text = (FIXTURES / "tiny_llama_config.json").read_text()
    data = {"kind": "config", "filename": "tiny.json", "contents": data_url(text.encode())}
    body = post_upload(client, data).get_json()
    assert "loaded as model" in json.dumps(body)
    upload_dir = app.server.config["ROOFLINE_DASHBOARD"]["upload_dir"]
    (stored,) = list(Path(upload_dir).glob("*.json"))
    model = "upload:" + stored.stem
    resp = post_plan(client, dict(state.DEFAULTS, model=model, **{"workload.prompt_tokens": 1024}))
    assert "kpi-ttft-value" in resp.get_data(as_text=True)
    # a link planted in the upload folder is not a stored upload
    (Path(upload_dir) / "planted.json").symlink_to(FIXTURES / "tiny_llama_config.json")
    resp = post_plan(client, dict(state.DEFAULTS, model="upload:planted"))
    assert "no longer on this server" in resp.get_data(as_text=True)


# --- uploads ----------------------------------------------------------------------------------------


def test_upload_folder_is_private_per_server(tmp_path):
    a, b = create_app(tmp_path, tmp_path), create_app(tmp_path, tmp_path)
    da = Path(a.server.config["ROOFLINE_DASHBOARD"]["upload_dir"])
    db = Path(b.server.config["ROOFLINE_DASHBOARD"]["upload_dir"])
    assert da != db
    for d in (da, db):
        mode = os.lstat(d).st_mode
        assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700


def test_a_planted_link_cannot_make_the_server_overwrite_a_file(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    folder = tmp_path / "uploads"
    folder.mkdir(mode=0o700)
    text = (FIXTURES / "tiny_llama_config.json").read_text()
    model_id = uploads.config_id(text, "tiny.json")
    (folder / f"{model_id}.json").symlink_to(victim)
    with pytest.raises(uploads.UploadError, match="not a regular file"):
        uploads.store_config(text, "tiny.json", folder)
    assert victim.read_text() == "keep me"
    # a link as the folder itself is refused too
    link_dir = tmp_path / "link-dir"
    link_dir.symlink_to(tmp_path / "elsewhere-dir", target_is_directory=True)
    (tmp_path / "elsewhere-dir").mkdir()
    with pytest.raises(uploads.UploadError, match="upload folder"):
        uploads.store_config(text, "tiny.json", link_dir)
    assert not list((tmp_path / "elsewhere-dir").iterdir())


def test_stored_upload_is_written_once_and_readable(tmp_path):
    text = (FIXTURES / "tiny_llama_config.json").read_text()
    first, _ = uploads.store_config(text, "tiny.json", tmp_path)
    again, _ = uploads.store_config(text, "tiny.json", tmp_path)
    assert first == again
    path = tmp_path / f"{first}.json"
    assert path.read_text() == text and stat.S_IMODE(os.lstat(path).st_mode) == 0o600


@pytest.mark.parametrize("size", [uploads.MAX_UPLOAD_BYTES - 1, uploads.MAX_UPLOAD_BYTES])
def test_upload_of_exactly_the_limit_is_accepted(size):
    raw = b"#" * size
    assert len(uploads.decode_upload(data_url(raw), "big.yaml")) == size


def test_upload_over_the_limit_is_refused_before_decoding(monkeypatch):
    def no_decoding(*a, **k):
        raise AssertionError("decoded an oversized upload")

    monkeypatch.setattr(uploads.base64, "b64decode", no_decoding)
    for extra in (1, 2, 3, 1000):
        encoded = data_url(b"#" * (uploads.MAX_UPLOAD_BYTES + extra))
        with pytest.raises(uploads.UploadError, match="1 MiB upload limit"):
            uploads.decode_upload(encoded, "big.yaml")


def test_upload_js_counts_the_decoded_size():
    assert "'='" in plan.UPLOAD_JS or '"="' in plan.UPLOAD_JS


@pytest.mark.parametrize(
    "name", ["../../etc/passwd.json", "..\\..\\x.json", "/etc/x.json", "a/b.json", "x\x00.json", "..", ""]
)
def test_traversal_names_are_refused(tmp_path, name):
    text = (FIXTURES / "tiny_llama_config.json").read_text()
    with pytest.raises(uploads.UploadError, match="file name"):
        uploads.store_config(text, name, tmp_path / "uploads")
    assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").iterdir())


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object/apply:os.system ['touch /tmp/roofline-pwned']\n",
        "model: !!python/name:os.system\n",
        "model: !!python/object/new:subprocess.Popen [['true']]\n",
    ],
)
def test_python_yaml_tags_are_refused(text):
    with pytest.raises(uploads.ScenarioError, match="not valid YAML"):
        uploads.parse_scenario_text(text, "evil.yaml")


def test_alias_bomb_is_refused_before_expanding():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        bomb += f"{cur}: &{cur} [{', '.join('*' + prev for _ in range(10))}]\n"
    with pytest.raises(uploads.ScenarioError, match="aliases"):
        uploads.parse_scenario_text(bomb, "bomb.yaml")
    # anchors used a few times are fine
    doc = uploads.parse_scenario_text("a: &w {batch: 1}\nworkload: *w\n", "ok.yaml")
    assert doc["workload"] == {"batch": 1}


def test_oversized_request_is_refused_before_parsing(app):
    client = app.server.test_client()
    resp = client.post(
        "/_dash-update-component",
        data=b"{" + b" " * (4 * 2**20),
        content_type="application/json",
    )
    assert resp.status_code == 413


def test_crafted_request_with_too_many_controls_is_refused(app):
    client = app.server.test_client()
    dep = dependency(client, "plan-alert.children")
    inputs, ids = control_lists(dict(state.DEFAULTS))
    extra = [
        {
            "id": {"type": "plan-param", "method": "kv_quant", "param": f"p{i}"},
            "property": "value",
            "value": 1,
        }
        for i in range(5000)
    ]
    inputs[2] = inputs[2] + extra
    ids[2] = ids[2] + [{"id": e["id"], "property": "id", "value": e["id"]} for e in extra]
    resp = client.post("/_dash-update-component", json=plan_body(dep, inputs, ids))
    assert resp.status_code == 200
    assert "too many" in resp.get_data(as_text=True)


# --- several clients at once (functional, not timed) ------------------------------------------------


def test_parallel_plan_updates_all_answer(app):
    results: list = []

    def one(prompt: int):
        client = app.server.test_client()
        resp = post_plan(client, dict(state.DEFAULTS, **{"workload.prompt_tokens": prompt}))
        results.append((resp.status_code, "kpi-ttft-value" in resp.get_data(as_text=True)))

    threads = [threading.Thread(target=one, args=(4096 * (i + 1),)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [(200, True)] * 6


# --- time budget (functional: a callback past its budget answers with a message) --------------------


def busy(seconds: float):
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_callback_past_its_time_budget_says_it_took_too_long(app, monkeypatch):
    from roofline.dashboards import budget, evaluate

    monkeypatch.setattr(budget, "TIME_BUDGET_S", 0.3)
    monkeypatch.setattr(evaluate, "plan_point", lambda doc: busy(60))
    client = app.server.test_client()  # runs the request in this (main) thread, as a server worker does
    body = post_plan(client, dict(state.DEFAULTS)).get_data(as_text=True)
    assert "took too long (over 0.3 s)" in body
    # the worker is free again: the next request is answered normally
    monkeypatch.undo()
    assert "kpi-ttft-value" in post_plan(client, dict(state.DEFAULTS)).get_data(as_text=True)


def test_bounded_leaves_fast_callbacks_and_their_errors_alone():
    from roofline.dashboards import budget

    assert budget.bounded(lambda x: x + 1, lambda msg, *a: msg, "adding")(1) == 2
    with pytest.raises(ZeroDivisionError):
        budget.bounded(lambda x: x / 0, lambda msg, *a: msg, "dividing")(1)


# --- serving ----------------------------------------------------------------------------------------


def test_dashboard_refuses_bad_workers_and_budget(capsys):
    from roofline.cli.main import main

    assert main(["dashboard", "--workers", "0"]) == 2
    assert "--workers 0" in capsys.readouterr().err
    assert main(["dashboard", "--time-budget", "-1"]) == 2
    assert "--time-budget" in capsys.readouterr().err


def test_server_runs_several_sync_workers_with_a_backstop_timeout():
    from roofline.dashboards import serve

    opts = serve.gunicorn_options("127.0.0.1", 8050, 3, 20.0)
    assert opts["workers"] == 3 and opts["worker_class"] == "sync" and opts["preload_app"]
    assert opts["timeout"] > 20 and opts["bind"] == "127.0.0.1:8050"
    assert serve.gunicorn_options("::1", 8050, 2, 5.0)["bind"] == "[::1]:8050"
    assert serve.default_workers() >= 2
