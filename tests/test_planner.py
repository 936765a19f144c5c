"""The layout planner: enumeration, Pareto front, and the `roofline plan` command."""

from __future__ import annotations

import json

import numpy as np

from roofline.cli.main import main
from roofline.simulator.planner import enumerate_layouts, pareto_front


def test_enumeration_counts_and_budget():
    layouts = enumerate_layouts(8, moe=False)
    # Ordered factorisations of 1, 2, 4, 8 into four powers of two: 1 + 4 + 10 + 20 = 35.
    assert len(layouts) == 35
    assert all(x["tp"] * x["pp"] * x["cp"] * x["dp"] <= 8 and x["ep"] == 1 for x in layouts)
    moe = enumerate_layouts(8, moe=True)
    assert all(x["ep"] == 1 or (x["ep"] % x["tp"] == 0 and (x["tp"] * x["dp"]) % x["ep"] == 0) for x in moe)
    assert {"tp": 1, "pp": 1, "cp": 1, "dp": 8, "ep": 8} in moe
    assert all(x["tp"] * x["pp"] * x["cp"] * x["dp"] >= 4 for x in enumerate_layouts(8, False, min_gpus=4))


def test_pareto_front_by_hand():
    cost = [1.0, 2.0, 3.0, 1.5, 2.5]
    latency = [5.0, 3.0, 1.0, 6.0, 3.0]
    eligible = [True, True, True, True, False]
    # (1.5, 6) is dominated by (1, 5); (2.5, 3) is not eligible.
    assert pareto_front(cost, latency, eligible).tolist() == [True, True, True, False, False]
    assert not pareto_front(cost, latency, [False] * 5).any()


def test_plan_cli_front_and_sla(capsys, tmp_path):
    scen = tmp_path / "s.yaml"
    scen.write_text(
        "model: llama-3.1-70b\nhardware: h100-sxm\nworkload: {batch: 16, prompt_tokens: 32768, output_tokens: 256, prefill_chunk_tokens: 16384}\n"
    )
    assert (
        main(
            [
                "plan",
                str(scen),
                "--gpus-max",
                "16",
                "--tpot-max",
                "0.03",
                "--hardware",
                "h100-sxm,h200",
                "--format",
                "json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["pareto"] and r["fits"] for r in rows)
    costs = [r["cost"]["usd_per_million_output_tokens"] for r in rows]
    tpots = [r["tpot_s"] for r in rows]
    assert costs == sorted(costs)
    assert all(np.diff(tpots) < 0)  # along the front, paying more buys lower latency
    assert all(r["meets_sla"] == (r["tpot_s"] <= 0.03) for r in rows)
    assert {r["hardware"] for r in rows} <= {"h100-sxm", "h200"}
    assert main(["plan", str(scen), "--gpus-max", "0"]) == 2
    assert "--gpus-max" in capsys.readouterr().err
    assert main(["plan", str(scen), "--gpus-max", "8", "--hardware", "h100"]) == 2
    assert "Did you mean" in capsys.readouterr().err
