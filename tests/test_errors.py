"""One error base and one scenario pipeline.

Every error caused by user input is a `UserError` (so each face catches one class); the one
did-you-mean helper offers what the user's word begins, else the closest spelling, else nothing;
a scenario's methods are parsed once per `simulate`, in validation, and its model-dependent checks
run in the simulator (`scenario_checks`); the GPUs of a layout are defined once (`Layout.gpus`).
"""

from __future__ import annotations

import pytest

import roofline.simulator.methods as methods_module
from roofline.api import load_scenario, simulate
from roofline.dashboards.profiles import ProfileError
from roofline.dashboards.uploads import UploadError
from roofline.hwspecs import HardwareSpecError, load_hardware
from roofline.models import load_model
from roofline.profilers.calibrate import CalibrateError
from roofline.profilers.validate_trace import TraceError
from roofline.simulator.calibration import CalibrationError
from roofline.simulator.errors import UserError, did_you_mean, suggestions
from roofline.simulator.layout import Layout
from roofline.simulator.model import ModelConfigError
from roofline.simulator.scenario import ScenarioError
from roofline.simulator.scenario_checks import model_dependent_problems

BASE = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 4096}}


@pytest.mark.parametrize(
    "cls",
    [
        ScenarioError,
        ModelConfigError,
        HardwareSpecError,
        CalibrationError,
        UploadError,
        ProfileError,
        TraceError,
        CalibrateError,
    ],
)
def test_every_user_error_class_is_a_user_error(cls):
    assert issubclass(cls, UserError) and issubclass(cls, ValueError)


def test_bad_input_raises_user_error_from_each_loader():
    with pytest.raises(UserError):
        load_hardware("h100-sxn")
    with pytest.raises(UserError):
        load_model("llama-3.1-8c")
    with pytest.raises(UserError):
        simulate({**BASE, "workload": {"batch": 0}})


def test_did_you_mean_offers_up_to_three_names_the_word_begins():
    valid = ["kv_quant", "kv_offload", "kv_evict", "kv_other", "quest"]
    assert suggestions("kv", valid) == ["kv_quant", "kv_offload", "kv_evict"]
    assert did_you_mean("kv_q", valid) == " Did you mean 'kv_quant'?"
    assert did_you_mean("kv", valid[:2]) == " Did you mean 'kv_quant' or 'kv_offload'?"


def test_did_you_mean_falls_back_to_the_closest_spelling():
    assert did_you_mean("qeust", ["kv_quant", "quest"]) == " Did you mean 'quest'?"
    assert did_you_mean("h100-sxn", ["a100-sxm", "h100-sxm", "h200"]) == " Did you mean 'h100-sxm'?"


def test_did_you_mean_says_nothing_when_nothing_is_close():
    assert did_you_mean("zzzz", ["kv_quant", "quest"]) == ""
    assert did_you_mean("", ["kv_quant", "quest"]) == ""
    assert did_you_mean("quest", []) == ""


def test_methods_are_parsed_once_per_simulate(monkeypatch):
    calls = []
    real = methods_module.parse_methods

    def counting(specs, source):
        calls.append(source)
        return real(specs, source)

    monkeypatch.setattr(methods_module, "parse_methods", counting)
    stack = [{"name": "kv_quant", "bits": 4}, {"name": "quest", "page_size": 16, "token_budget": 4096}]
    simulate({**BASE, "methods": stack, "sweep": {"workload.batch": [1, 2], "parallelism.tp": [1, 2]}})
    assert len(calls) == 1


def test_validated_scenario_carries_its_parsed_stack():
    specs = [{"name": "weight_quant", "format": "w8a8"}, {"name": "kv_quant", "bits": 4}]
    sc = load_scenario({**BASE, "methods": specs})
    assert [m.name for m in sc.stack] == ["weight_quant", "kv_quant"]
    assert sc.stack[1].bits == 4
    assert sc.methods == specs  # the user's specs, as given


def test_model_dependent_checks_live_in_the_simulator():
    """The same problems the API raises come from `model_dependent_problems` with any model loader."""
    ok = load_scenario({**BASE, "parallelism": {"cp": 2, "cp_variant": "pass-kv"}})
    assert model_dependent_problems(ok, load_model, "<s>") == []
    bad = {**BASE, "parallelism": {"tp": 8, "cp": 3, "cp_variant": "ulysses"}}
    with pytest.raises(ScenarioError) as exc:
        load_scenario(bad)
    assert "ulysses shards attention heads" in str(exc.value)
    assert "32 heads over tp=8 do not split into cp=3" in str(exc.value)


def test_layout_gpus_is_the_product_of_the_degrees():
    values = {
        "parallelism.tp": 2,
        "parallelism.pp": 3,
        "parallelism.cp": 5,
        "parallelism.dp": 7,
        "parallelism.ep": 2,
        "parallelism.cp_variant": "pass-q",
        "runtime.overlap": "overlap",
        "runtime.custom_allreduce": False,
        "runtime.sliding_window_kv_share": None,
        "runtime.framework": "vllm",
        "runtime.cuda_graphs": None,
        "runtime.cpu_overlap": None,
        "runtime.cpu_step_ms": None,
        "runtime.cpu_per_sequence_us": None,
        "runtime.pp_relay_us": None,
        "runtime.dispatch_us": None,
        "runtime.cuda_graph_batch_sizes": None,
        "runtime.moe_routing": "power_law",
        "runtime.attn_implementation": None,
        "runtime.cache_implementation": None,
        "runtime.prefill_logits": None,
    }
    layout = Layout.from_values(values)
    # Unset (null), the peer all-reduce is the framework's: the serving engines', not eager PyTorch's.
    assert Layout.from_values({**values, "runtime.custom_allreduce": None}).custom_allreduce
    assert not Layout.from_values(
        {**values, "runtime.custom_allreduce": None, "runtime.framework": "hf"}
    ).custom_allreduce
    # and so is the cache of sliding-window layers: the window in vLLM's, every token in TensorRT-LLM's
    assert layout.window_kv_share == 0.0
    assert Layout.from_values({**values, "runtime.framework": "trtllm"}).window_kv_share == 1.0
    told = {**values, "runtime.framework": "trtllm", "runtime.sliding_window_kv_share": 0.0}
    assert Layout.from_values(told).window_kv_share == 0.0
    assert layout.gpus == 2 * 3 * 5 * 7
    assert (layout.ep, layout.cp_variant, layout.overlap, layout.custom_allreduce) == (
        2,
        "pass-q",
        "overlap",
        False,
    )


def test_dtypes_come_from_the_schemas_dtype_fields():
    from roofline.simulator.engine import Dtypes
    from roofline.simulator.scenario_schema import SCHEMA

    values = {path: spec.default for path, spec in SCHEMA.items() if path.startswith("dtype.")}
    assert Dtypes.from_values({**values, "model": "x"}) == Dtypes()
    assert Dtypes.from_values({**values, "dtype.kv": "fp8"}).kv == "fp8"
