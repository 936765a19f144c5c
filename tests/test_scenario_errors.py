"""Bad scenario input is rejected before any computation with a `ScenarioError` whose message names
the source (file path, or `<scenario>` for a mapping), the field path, and — where the valid values
form a finite set — the choices with a "Did you mean" hint (SPEC.md, "Bad input").

A configuration that does not fit in memory is a result (`fits: false` with `fit_reason`), not an
error; the last tests check that.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
import yaml

import roofline
from roofline.api import load_scenario
from roofline.hwspecs import list_hardware
from roofline.models import list_models
from roofline.simulator.scenario import Scenario, ScenarioError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOT_A_TRANSFORMER = FIXTURES / "not_a_transformer_config.json"
TINY_LLAMA = FIXTURES / "tiny_llama_config.json"
MAPPING_SOURCE = "<scenario>"

BASE = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 4096}}


def doc(**fields) -> dict:
    """BASE with top-level fields replaced (sections given as dicts)."""
    out = copy.deepcopy(BASE)
    out.update(fields)
    return out


def error_message(source, overrides=()) -> str:
    with pytest.raises(ScenarioError) as exc_info:
        load_scenario(source, overrides=overrides)
    exc = exc_info.value
    assert isinstance(exc, ValueError)
    assert exc.problems, "a ScenarioError lists its problems"
    assert str(exc) == "\n".join(exc.problems)
    return str(exc)


def assert_mentions(message: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in error message:\n{message}"


# (id, scenario mapping, fragments the message must contain besides the source)
BAD_DOCS = [
    # Unknown keys: top level and in every section, with the valid keys and a suggestion.
    (
        "unknown-top-level",
        doc(workloads={"batch": 1}),
        ["unknown field 'workloads'", "Did you mean 'workload'?", "Valid: name, model, hardware"],
    ),
    (
        "unknown-top-level-no-hint",
        doc(zzzzqqq=1),
        ["unknown field 'zzzzqqq'", "Valid:", "workload"],
    ),
    (
        "unknown-workload-key",
        doc(workload={"promt_tokens": 4096}),
        ["workload.promt_tokens", "Did you mean 'prompt_tokens'?", "Valid: batch, prompt_tokens"],
    ),
    (
        "unknown-parallelism-key",
        doc(parallelism={"tpp": 2}),
        ["parallelism.tpp", "Did you mean 'tp'?", "Valid:", "cp_variant"],
    ),
    (
        "unknown-dtype-key",
        doc(dtype={"kv_cache": "fp8"}),
        ["dtype.kv_cache", "Valid: weights, activations, kv"],
    ),
    (
        "unknown-pricing-key",
        doc(pricing={"usd_per_hour": 2.0}),
        ["pricing.usd_per_hour", "Did you mean 'usd_per_gpu_hour'?"],
    ),
    (
        "unknown-runtime-key",
        doc(runtime={"overhead_gib": 2.0}),
        ["runtime.overhead_gib", "Did you mean 'overhead_GiB'?"],
    ),
    ("section-not-a-mapping", doc(workload=[1, 2]), ["'workload' must be a mapping"]),
    ("section-scalar", doc(dtype="bf16"), ["'dtype' must be a mapping"]),
    # Wrong types.
    ("string-batch", doc(workload={"batch": "8"}), ["workload.batch", "must be an integer", "'8'"]),
    ("float-batch", doc(workload={"batch": 8.0}), ["workload.batch", "must be an integer", "8.0"]),
    ("fractional-batch", doc(workload={"batch": 2.5}), ["workload.batch", "must be an integer", "2.5"]),
    ("bool-batch", doc(workload={"batch": True}), ["workload.batch", "must be an integer", "True"]),
    ("null-batch", doc(workload={"batch": None}), ["workload.batch", "must not be null"]),
    ("list-batch", doc(workload={"batch": [1, 2]}), ["workload.batch", "must be an integer"]),
    ("string-tp", doc(parallelism={"tp": "2"}), ["parallelism.tp", "must be an integer"]),
    ("bool-gpus", doc(gpus=False), ["gpus", "must be an integer"]),
    ("string-price", doc(pricing={"usd_per_gpu_hour": "cheap"}), ["pricing.usd_per_gpu_hour", "number"]),
    ("bool-price", doc(pricing={"usd_per_gpu_hour": True}), ["pricing.usd_per_gpu_hour", "number"]),
    ("nan-price", doc(pricing={"usd_per_gpu_hour": float("nan")}), ["pricing.usd_per_gpu_hour", "finite"]),
    ("inf-overhead", doc(runtime={"overhead_GiB": float("inf")}), ["runtime.overhead_GiB", "finite"]),
    ("int-model", doc(model=8), ["model", "must be a string"]),
    ("list-hardware", doc(hardware=["h100-sxm"]), ["hardware", "must be a string"]),
    ("int-dtype", doc(dtype={"kv": 8}), ["dtype.kv", "must be a string"]),
    ("int-name", doc(name=3), ["name", "must be a string"]),
    # Negative and zero sizes.
    ("negative-prompt", doc(workload={"prompt_tokens": -5}), ["workload.prompt_tokens", ">= 1", "-5"]),
    ("zero-prompt", doc(workload={"prompt_tokens": 0}), ["workload.prompt_tokens", ">= 1"]),
    ("zero-output", doc(workload={"output_tokens": 0}), ["workload.output_tokens", ">= 1"]),
    ("zero-batch", doc(workload={"batch": 0}), ["workload.batch", ">= 1"]),
    ("negative-batch", doc(workload={"batch": -3}), ["workload.batch", ">= 1", "-3"]),
    (
        "negative-shared-prefix",
        doc(workload={"shared_prefix_tokens": -1}),
        ["workload.shared_prefix_tokens", ">= 0"],
    ),
    ("zero-chunk", doc(workload={"prefill_chunk_tokens": 0}), ["workload.prefill_chunk_tokens", ">= 1"]),
    ("zero-tp", doc(parallelism={"tp": 0}), ["parallelism.tp", ">= 1"]),
    ("negative-pp", doc(parallelism={"pp": -2}), ["parallelism.pp", ">= 1"]),
    ("zero-dp", doc(parallelism={"dp": 0}), ["parallelism.dp", ">= 1"]),
    ("zero-gpus", doc(gpus=0), ["gpus", ">= 1"]),
    ("negative-price", doc(pricing={"usd_per_gpu_hour": -1.0}), ["pricing.usd_per_gpu_hour", ">= 0"]),
    ("negative-overhead", doc(runtime={"overhead_GiB": -0.5}), ["runtime.overhead_GiB", ">= 0"]),
    # Unknown names and choices, with did-you-mean and the valid list.
    (
        "unknown-model",
        doc(model="llama-3.1-8"),
        ["model", "unknown model 'llama-3.1-8'", "Did you mean 'llama-3.1-8b'?", "Valid:", "mixtral-8x7b"],
    ),
    (
        "unknown-model-no-hint",
        doc(model="qqqqqqqq"),
        ["model", "unknown model 'qqqqqqqq'", "Valid:", "llama-3.1-8b", "config.json"],
    ),
    (
        "unknown-hardware",
        doc(hardware="h100"),
        ["hardware", "unknown hardware 'h100'", "Did you mean", "Valid:", "h100-sxm", "h100-pcie"],
    ),
    (
        "misspelt-hardware",
        doc(hardware="h100-sxn"),
        ["hardware", "unknown hardware 'h100-sxn'", "Did you mean 'h100-sxm'?"],
    ),
    (
        "invalid-kv-dtype",
        doc(dtype={"kv": "bf61"}),
        ["dtype.kv", "'bf61' is not valid", "Did you mean 'bf16'?", "Valid:", "fp8", "int4"],
    ),
    (
        "invalid-weights-dtype",
        doc(dtype={"weights": "float8"}),
        ["dtype.weights", "'float8' is not valid", "Valid:", "fp32", "bf16"],
    ),
    (
        "invalid-activations-dtype",
        doc(dtype={"activations": "fp-16"}),
        ["dtype.activations", "'fp-16' is not valid", "Did you mean"],
    ),
    (
        "invalid-cp-variant",
        doc(parallelism={"cp_variant": "pass_kv"}),
        ["parallelism.cp_variant", "Did you mean 'pass-kv'?", "Valid: pass-kv, pass-q, ulysses"],
    ),
    (
        "invalid-overlap",
        doc(runtime={"overlap": "overlapp"}),
        ["runtime.overlap", "Did you mean 'overlap'?", "Valid: serial, overlap"],
    ),
    ("invalid-calibration", doc(calibration="my-profile"), ["calibration", "Valid: auto, datasheet"]),
    # Required fields.
    ("missing-model", {"hardware": "h100-sxm"}, ["missing required field 'model'"]),
    ("missing-hardware", {"model": "llama-3.1-8b"}, ["missing required field 'hardware'"]),
    ("null-model", doc(model=None), ["missing required field 'model'"]),
    # Impossible or unmodelled layouts.
    (
        "gpus-mismatch",
        doc(gpus=4, parallelism={"tp": 2}),
        ["gpus", "4 GPUs", "tp*pp*cp*dp", "2*1*1*1 = 2"],
    ),
    (
        "gpus-mismatch-dp",
        doc(gpus=1, parallelism={"tp": 2, "dp": 2}),
        ["gpus", "1 GPUs", "2*1*1*2 = 4"],
    ),
    (
        "context-parallel",
        doc(gpus=3, parallelism={"cp": 3, "cp_variant": "ulysses"}),
        ["parallelism.cp", "ulysses", "32 heads", "pass-kv or pass-q"],
    ),
    ("expert-parallel", doc(parallelism={"ep": 2}), ["parallelism.ep", "multiple of tp=1", "divide tp*dp=1"]),
    (
        "expert-parallel-dense-model",
        doc(gpus=2, parallelism={"dp": 2, "ep": 2}),
        ["parallelism.ep", "llama-3.1-8b has no experts"],
    ),
    (
        "shared-prefix-exceeds-prompt",
        doc(workload={"prompt_tokens": 100, "shared_prefix_tokens": 200}),
        ["workload.shared_prefix_tokens", "200 shared tokens exceed the prompt (100 tokens)"],
    ),
    # Sweeps.
    (
        "sweep-unknown-field",
        doc(sweep={"workload.batches": [1, 2]}),
        ["sweep.workload.batches", "not a sweepable field", "Did you mean 'workload.batch'?", "Valid:"],
    ),
    (
        "sweep-section",
        doc(sweep={"workload": [1, 2]}),
        ["sweep.workload", "not a sweepable field", "Valid:"],
    ),
    ("sweep-name", doc(sweep={"name": ["a", "b"]}), ["sweep.name", "not a sweepable field"]),
    (
        "sweep-calibration",
        doc(sweep={"calibration": ["auto", "datasheet"]}),
        ["sweep.calibration", "not a sweepable field"],
    ),
    (
        "sweep-wrong-type",
        doc(sweep={"workload.batch": [1, "x"]}),
        ["sweep.workload.batch", "must be an integer", "'x'"],
    ),
    (
        "sweep-negative",
        doc(sweep={"workload.prompt_tokens": [1024, -1]}),
        ["sweep.workload.prompt_tokens", ">= 1", "-1"],
    ),
    (
        "sweep-unknown-hardware",
        doc(sweep={"hardware": ["h100-sxm", "h100-sxn"]}),
        ["sweep.hardware", "unknown hardware 'h100-sxn'", "Did you mean 'h100-sxm'?"],
    ),
    (
        "sweep-unknown-model",
        doc(sweep={"model": ["llama-3.1-8b", "mistral-7"]}),
        ["sweep.model", "unknown model 'mistral-7'", "Did you mean 'mistral-7b'?"],
    ),
    (
        "sweep-invalid-dtype",
        doc(sweep={"dtype.kv": ["bf16", "fp9"]}),
        ["sweep.dtype.kv", "'fp9' is not valid", "Valid:"],
    ),
    (
        "sweep-not-a-list",
        doc(sweep={"workload.batch": 4}),
        ["sweep.workload.batch", "must be a non-empty list", "got 4"],
    ),
    ("sweep-empty-list", doc(sweep={"workload.batch": []}), ["sweep.workload.batch", "non-empty list"]),
    (
        "sweep-mapping-value",
        doc(sweep={"workload.batch": {"from": 1, "to": 8}}),
        ["sweep.workload.batch", "non-empty list"],
    ),
    ("sweep-not-a-mapping", doc(sweep=[1, 2]), ["sweep must map field paths to lists"]),
    (
        "sweep-tp-breaks-gpus",
        doc(gpus=1, sweep={"parallelism.tp": [1, 2]}),
        ["gpus", "1 GPUs", "2*1*1*1 = 2"],
    ),
    (
        "sweep-ep",
        doc(gpus=2, parallelism={"tp": 2}, sweep={"parallelism.ep": [1, 3]}),
        ["parallelism.ep", "multiple of tp=2"],
    ),
    (
        "sweep-prompt-below-prefix",
        doc(workload={"shared_prefix_tokens": 500}, sweep={"workload.prompt_tokens": [100, 1000]}),
        ["workload.shared_prefix_tokens", "500 shared tokens exceed the prompt (100 tokens)"],
    ),
    # Methods.
    ("methods-not-a-list", doc(methods={"name": "quest"}), ["methods must be a list"]),
    (
        "unknown-method",
        doc(methods=[{"name": "quets"}]),
        ["methods[0]", "'quets'", "Did you mean 'quest'", "kv_quant"],
    ),
    (
        "method-missing-param",
        doc(methods=[{"name": "quest"}]),
        ["methods[0]", "quest needs parameter 'token_budget'"],
    ),
    (
        "method-bad-param",
        doc(methods=[{"name": "kv_quant", "bits": 3}]),
        ["methods[0]", "bits", "Valid: 16, 8, 4, 2"],
    ),
    (
        "method-unknown-param",
        doc(methods=[{"name": "kv_quant", "bits": 4, "group": 64}]),
        ["unknown parameter 'group'", "Did you mean 'group_size'"],
    ),
    (
        "methods-conflict",
        doc(methods=[{"name": "h2o", "budget_tokens": 1024}, {"name": "snapkv", "budget_tokens": 1024}]),
        ["h2o and snapkv cannot be combined", "which tokens stay in the cache"],
    ),
    # Not-a-transformer config.json: the error names the file and the missing fields.
    (
        "config-not-a-transformer",
        doc(model=str(NOT_A_TRANSFORMER)),
        [
            "model",
            str(NOT_A_TRANSFORMER),
            "resnet",
            "missing hidden_size, num_hidden_layers, num_attention_heads, vocab_size, intermediate_size",
        ],
    ),
    (
        "config-missing-file",
        doc(model=str(FIXTURES / "no_such_config.json")),
        ["model", "no_such_config.json", "no such config file"],
    ),
]


@pytest.mark.parametrize("scenario, fragments", [c[1:] for c in BAD_DOCS], ids=[c[0] for c in BAD_DOCS])
def test_bad_mapping_is_a_scenario_error(scenario, fragments):
    message = error_message(scenario)
    assert message.startswith(MAPPING_SOURCE)
    assert_mentions(message, *fragments)


@pytest.mark.parametrize("scenario, fragments", [c[1:] for c in BAD_DOCS], ids=[c[0] for c in BAD_DOCS])
def test_bad_file_error_names_the_file(tmp_path, scenario, fragments):
    path = tmp_path / "bad-scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    message = error_message(path)
    for problem in message.splitlines():
        assert problem.startswith(str(path)), problem
    assert_mentions(message, *fragments)


def test_every_problem_is_reported_at_once():
    message = error_message(
        doc(
            workloads={},
            workload={"batch": "8", "output_tokens": 0, "prompt_tokens": 4096},
            dtype={"kv": "bf61"},
        )
    )
    assert_mentions(message, "'workloads'", "workload.batch", "workload.output_tokens", "dtype.kv")
    assert len(message.splitlines()) == 4


def test_unknown_name_offers_every_registry_entry():
    message = error_message(doc(hardware="nosuch-gpu"))
    assert all(name in message for name in list_hardware())
    message = error_message(doc(model="nosuch-model"))
    assert all(name in message for name in list_models())


def test_h100_suggests_an_h100_variant():
    message = error_message(doc(hardware="h100"))
    assert "Did you mean 'h100-" in message


# --- the scenario is not a mapping -----------------------------------------------------------------


@pytest.mark.parametrize("scenario", [[1, 2], [BASE], 42, 1.5, None, True], ids=repr)
def test_non_mapping_scenario(scenario):
    message = error_message(scenario)
    assert_mentions(message, MAPPING_SOURCE, "must be a YAML mapping", type(scenario).__name__)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("- model: llama-3.1-8b\n- hardware: h100-sxm\n", "list"),
        ("42\n", "int"),
        ("just a sentence\n", "str"),
        ("", "NoneType"),
        ("# only a comment\n", "NoneType"),
    ],
    ids=["list", "int", "str", "empty", "comment-only"],
)
def test_non_mapping_file(tmp_path, text, kind):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    message = error_message(path)
    assert_mentions(message, str(path), "must be a YAML mapping", kind)


# --- files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "model: [llama-3.1-8b\nhardware: h100-sxm\n",
        "model: llama-3.1-8b\n  hardware: h100-sxm\n bad: indent\n",
        "model: llama-3.1-8b\nworkload: {batch: 1\n",
        "model: llama-3.1-8b\n\tbatch: 1\n",
        "a: !!python/object/apply:os.system ['true']\n",
    ],
    ids=["unclosed-list", "bad-indent", "unclosed-mapping", "tab", "python-tag"],
)
def test_yaml_syntax_error(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    message = error_message(path)
    assert_mentions(message, str(path), "not valid YAML")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    message = error_message(path)
    assert_mentions(message, str(path), "no such scenario file")
    assert error_message(str(path)) == message


def test_directory_is_not_a_scenario_file(tmp_path):
    assert_mentions(error_message(tmp_path), str(tmp_path), "no such scenario file")


def test_binary_file(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81model")
    assert_mentions(error_message(path), str(path))


def test_oversized_file(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * 200_000)
    assert_mentions(error_message(path), str(path), "larger than")


def test_file_stem_is_the_default_name(tmp_path):
    path = tmp_path / "my-run.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_scenario(path).name == "my-run"


# --- config.json as the model ----------------------------------------------------------------------


def write_config(tmp_path, config, name="config.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def tiny_llama() -> dict:
    return json.loads(TINY_LLAMA.read_text())


def test_tiny_llama_config_is_accepted():
    scenario = load_scenario(doc(model=str(TINY_LLAMA)))
    assert isinstance(scenario, Scenario)


def test_not_a_transformer_config_via_file_scenario(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc(model=str(NOT_A_TRANSFORMER))))
    message = error_message(path)
    assert_mentions(message, str(path), "model:", "not_a_transformer_config.json", "missing hidden_size")


@pytest.mark.parametrize(
    "mutate, fragments",
    [
        (lambda c: c.update(hidden_size="64"), ["'hidden_size'", "positive integer", "'64'"]),
        (lambda c: c.update(num_key_value_heads="2"), ["'num_key_value_heads'", "positive integer"]),
        (lambda c: c.update(intermediate_size=-1), ["'intermediate_size'", "-1"]),
        (lambda c: c.pop("vocab_size"), ["missing vocab_size"]),
        (lambda c: c.pop("num_hidden_layers"), ["missing num_hidden_layers"]),
    ],
    ids=["string-hidden", "string-kv-heads", "negative-intermediate", "no-vocab", "no-layers"],
)
def test_invalid_config_fields(tmp_path, mutate, fragments):
    config = tiny_llama()
    mutate(config)
    path = write_config(tmp_path, config)
    message = error_message(doc(model=path))
    assert_mentions(message, MAPPING_SOURCE, "model:", path, *fragments)


@pytest.mark.parametrize(
    "text, fragment",
    [("[1, 2, 3]", "must hold a JSON object"), ("{not json", "not valid JSON"), ("", "not valid JSON")],
    ids=["json-list", "syntax-error", "empty"],
)
def test_unparsable_config(tmp_path, text, fragment):
    path = tmp_path / "config.json"
    path.write_text(text)
    assert_mentions(error_message(doc(model=str(path))), str(path), fragment)


def test_zero_attention_heads_is_a_scenario_error(tmp_path):
    config = dict(tiny_llama(), num_attention_heads=0)
    assert_mentions(error_message(doc(model=write_config(tmp_path, config))), "num_attention_heads")


def test_zero_attention_heads_chatglm_is_a_scenario_error(tmp_path):
    config = {
        "model_type": "chatglm",
        "hidden_size": 64,
        "num_layers": 2,
        "num_attention_heads": 0,
        "ffn_hidden_size": 128,
        "padded_vocab_size": 1000,
    }
    assert_mentions(error_message(doc(model=write_config(tmp_path, config))), "num_attention_heads")


@pytest.mark.parametrize(
    "config",
    [
        dict(
            json.loads(TINY_LLAMA.read_text()),
            head_dim="x",
        ),
        dict(json.loads(TINY_LLAMA.read_text()), num_local_experts="8"),
        {
            "model_type": "deepseek_v2",
            "hidden_size": "64",
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "vocab_size": 1000,
            "kv_lora_rank": 16,
            "qk_nope_head_dim": 8,
            "qk_rope_head_dim": 8,
            "v_head_dim": 8,
            "intermediate_size": 128,
        },
    ],
    ids=["llama-string-head-dim", "llama-string-experts", "deepseek-string-hidden"],
)
def test_mistyped_config_field_is_a_scenario_error(tmp_path, config):
    path = write_config(tmp_path, config)
    with pytest.raises(ScenarioError):
        roofline.simulate(doc(model=path))


# --- --set overrides -------------------------------------------------------------------------------


def test_set_unknown_path():
    message = error_message(BASE, ["workload.batchh=3"])
    assert_mentions(
        message, "--set workload.batchh", "unknown field", "Did you mean 'workload.batch'?", "Valid:"
    )


def test_set_section_is_not_a_field():
    assert_mentions(error_message(BASE, ["workload=3"]), "--set workload", "unknown field")


def test_set_without_equals():
    assert_mentions(error_message(BASE, ["workload.batch"]), "--set 'workload.batch'", "expected path=value")


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("workload.batch=abc", ["workload.batch", "must be an integer", "'abc'"]),
        ("workload.batch=2.5", ["workload.batch", "must be an integer"]),
        ("workload.prompt_tokens=-1", ["workload.prompt_tokens", ">= 1"]),
        ("hardware=h100-sxn", ["hardware", "Did you mean 'h100-sxm'?"]),
        ("model=llama-3.1-8", ["model", "Did you mean 'llama-3.1-8b'?"]),
        ("dtype.kv=bf61", ["dtype.kv", "Did you mean 'bf16'?"]),
        ("parallelism.ep=2", ["parallelism.ep", "multiple of tp"]),
        ("gpus=3", ["gpus", "3 GPUs"]),
        ("workload.batch=", ["workload.batch", "must not be null"]),
    ],
)
def test_set_values_are_type_checked(tmp_path, override, fragments):
    assert_mentions(error_message(BASE, [override]), MAPPING_SOURCE, *fragments)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert_mentions(error_message(path, [override]), str(path), *fragments)


def test_set_values_are_read_as_yaml():
    scenario = load_scenario(
        BASE, ["workload.batch=8", "workload.prefill_chunk_tokens=null", "pricing.usd_per_gpu_hour=2.5"]
    )
    assert scenario.base["workload.batch"] == 8
    assert scenario.base["workload.prefill_chunk_tokens"] is None
    assert scenario.base["pricing.usd_per_gpu_hour"] == 2.5


def test_set_fixes_a_bad_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc(hardware="h100")))
    assert load_scenario(path, ["hardware=h100-sxm"]).base["hardware"] == "h100-sxm"


# --- not fitting is a result, not an error ---------------------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        doc(model="llama-3.1-405b", hardware="l4"),
        doc(workload={"batch": 64, "prompt_tokens": 1_000_000, "output_tokens": 1024}),
        doc(runtime={"overhead_GiB": 1000.0}),
    ],
    ids=["405b-on-l4", "64x1M-tokens", "huge-overhead"],
)
def test_not_fitting_is_a_result(scenario):
    (rec,) = roofline.simulate(scenario).records()
    assert rec["fits"] is False
    assert isinstance(rec["fit_reason"], str)
    assert_mentions(rec["fit_reason"], "GiB", rec["hardware"])
    assert rec["memory"]["total_bytes"] > rec["memory"]["capacity_bytes"]
    assert rec["ttft_s"] > 0 and rec["tpot_s"] > 0


def test_fitting_result_has_no_fit_reason():
    (rec,) = roofline.simulate(BASE).records()
    assert rec["fits"] is True
    assert "fit_reason" not in rec


# --- values the schema accepts but the engine cannot represent --------------------------------------


@pytest.mark.parametrize(
    "workload",
    [{"prompt_tokens": 10**400}, {"batch": 10**400}, {"prefill_chunk_tokens": 10**400}],
    ids=["prompt", "batch", "chunk"],
)
def test_huge_integer_is_a_range_error(workload):
    with pytest.raises(ScenarioError, match=r"must be <= 1e\+(07|10)"):
        roofline.simulate(doc(workload=workload))


def test_huge_overhead_is_a_range_error():
    with pytest.raises(ScenarioError, match=r"runtime.overhead_GiB: must be <= 1e\+06"):
        roofline.simulate(doc(runtime={"overhead_GiB": 1e300}))


# --- hostile YAML ----------------------------------------------------------------------------------

DEEP = 800  # nesting depth of a hostile (but small: 1.6 KB) YAML value


def error_without_recursion(source, overrides=()) -> str:
    """error_message() under Python's default recursion limit (the CLI's; pytest raises it, and
    PyYAML's scanner slows quadratically with depth), a RecursionError becoming an assertion."""
    escaped = None
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        return error_message(source, overrides)
    except RecursionError:
        escaped = "RecursionError escaped load_scenario instead of a ScenarioError"
    finally:
        sys.setrecursionlimit(limit)
    raise AssertionError(escaped)


def test_deeply_nested_yaml_file(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("hardware: h100-sxm\nmodel: " + "[" * DEEP + "]" * DEEP + "\n")
    assert_mentions(error_without_recursion(path), str(path))


def test_deeply_nested_set_value():
    message = error_without_recursion(BASE, ["workload.batch=" + "[" * DEEP + "]" * DEEP])
    assert_mentions(message, "workload.batch")


def test_alias_bomb_gives_a_bounded_message(tmp_path):
    body = "model: llama-3.1-8b\nhardware: h100-sxm\nworkload:\n  batch: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i, key in enumerate(["prompt_tokens", "output_tokens", "shared_prefix_tokens"], 1):
        body += f"  {key}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    path = tmp_path / "aliases.yaml"
    path.write_text(body)
    message = error_message(path)  # 11,110 elements: under the alias bound, refused by the schema
    assert_mentions(message, str(path), "workload.shared_prefix_tokens")
    assert len(message) < 20_000, f"{len(body)}-byte file gave a {len(message)}-character message"
    # One level more (111,110 elements) is refused by the reader before expanding, naming the bound.
    path.write_text(body + "  prefill_chunk_tokens: &a4 [" + ", ".join(["*a3"] * 10) + "]\n")
    assert_mentions(error_message(path), str(path), "aliases expand to", "at most 100,000")


def test_sweep_size_is_capped():
    # 3 axes of 200 values = 8,000,000 points > MAX_SWEEP_POINTS: rejected before allocating.
    values = list(range(1, 201))
    sweep = {"workload.prompt_tokens": values, "workload.output_tokens": values, "workload.batch": values}
    with pytest.raises(ScenarioError, match=r"8,000,000 points"):
        roofline.api.load_scenario({"model": "llama-3.1-8b", "hardware": "h100-sxm", "sweep": sweep})


def test_a_yaml_syntax_error_names_the_file_and_line_in_one_line(tmp_path, capsys):
    from roofline.cli.main import main

    path = tmp_path / "bad.yaml"
    path.write_text("model: llama-3.1-8b\nhardware: h100-sxm\nworkload: {batch: 1, prompt_tokens: 4096\n")
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:4:1: not valid YAML: did not find expected ',' or '}}'")
    assert len(err.strip().splitlines()) == 1 and "<unicode string>" not in err
