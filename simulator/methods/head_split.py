"""Head-level sparsity: DuoAttention and LServe.

* DuoAttention (Xiao et al., arXiv:2410.10819): a `retrieval_head_fraction` of KV heads keep the
  full cache; the others ("streaming heads") keep `sink_tokens` + `recent_tokens` and attend only
  to those, in prefill too. Memory and decode reads approach 1/retrieval_fraction of dense at long
  context (DuoAttention reports up to 2.55x memory for MHA at 25% and 1.67x for GQA at 50%).
* LServe (Yang et al., arXiv:2502.14866): streaming heads as in DuoAttention plus query-aware page
  selection on the remaining heads (Quest-style min/max page metadata, `token_budget` tokens read),
  with selection reused across `reuse_interval` decode steps.

Neither applies to MLA (its latent is shared by all heads): rejected with a message.

Against the paper (tests/test_methods_*.py): memory ratios reproduce within 3% (2.49x for MHA at 25%
retrieval heads vs 2.55x; 1.61x for GQA at 50% vs 1.67x). Decode speedups come out higher (2.61x vs
2.18x; 1.67x vs 1.50x) because the roofline counts HBM bytes only, while the measured decode also
pays per-step framework and kernel overheads that do not shrink with the cache. The
W8A8 + 4-bit KV + 50% stack fits 4.3M tokens on an A100-80GB vs the paper's 3.3M: the model charges
the ideal 4-bit format (0.53 B/element); the paper's kernels keep larger scales and buffers.
"""

from __future__ import annotations

from dataclasses import replace

from roofline.simulator.kvplan import restrict, window
from roofline.simulator.methods.base_method import KV_POLICY, Method, Param
from roofline.simulator.methods.selection import page_metadata_op


def _no_mla(model, name) -> list:
    if model.has_mla:
        return [
            f"{name} splits KV heads, but {model.name} uses MLA, whose latent cache is shared by all heads"
        ]
    return []


def _split(plan, retrieval_fraction, keep, selection_budget=None, page_size=None):
    """Each group becomes retrieval heads (kept as they are, optionally with query-aware selection)
    and streaming heads (at most sinks + recent tokens, also in prefill)."""
    groups = []
    for g in plan.groups:
        if not g.heads:
            groups.append(g)
            continue
        budget = (
            g.selection_budget
            if selection_budget is None
            else min(selection_budget, g.selection_budget or selection_budget)
        )
        groups.append(
            replace(
                g,
                fraction=g.fraction * retrieval_fraction,
                selection_budget=budget,
                label=f"{g.label}_retrieval",
            )
        )
        groups.append(
            replace(
                g,
                fraction=g.fraction * (1.0 - retrieval_fraction),
                stored=restrict(g.stored, window(keep)),
                read=restrict(g.read, window(keep)),
                attended=None if g.attended is None else restrict(g.attended, window(keep)),
                prefill_window=g.prefill_window_within(keep),
                selection_budget=None,  # a short window needs no page selection
                selection_page_size=None,
                label=f"{g.label}_streaming",
            )
        )
    return plan.with_groups(groups)


class DuoAttention(Method):
    name = "duo_attention"
    summary = "Full KV for retrieval heads, sinks + recent window for streaming heads"
    citation = "DuoAttention, Xiao et al. 2025 (arXiv:2410.10819)"
    changes = "KV memory, decode reads and prefill attention of streaming heads limited to sink + recent"
    stage = KV_POLICY
    exclusive = ("head_split",)
    params = {
        "retrieval_head_fraction": Param(
            "float",
            "Share of KV heads that keep the full cache.",
            minimum=0.0,
            maximum=1.0,
            validated=(0.25, 0.75),
        ),
        "sink_tokens": Param("int", "Attention-sink tokens kept by streaming heads.", 64, minimum=0),
        "recent_tokens": Param("int", "Recent tokens kept by streaming heads.", 256, minimum=1),
    }

    def check_model(self, model):
        return _no_mla(model, self.name)

    def apply_plan(self, plan, model):
        return _split(plan, self.retrieval_head_fraction, self.sink_tokens + self.recent_tokens)


class LServe(Method):
    name = "lserve"
    summary = "Streaming heads plus query-aware page selection on the rest (unified sparse serving)"
    citation = "LServe, Yang et al. 2025 (arXiv:2502.14866)"
    changes = "streaming heads as DuoAttention; other heads read token_budget tokens of selected pages plus page metadata"
    stage = KV_POLICY
    exclusive = ("head_split", "selection")
    params = {
        "streaming_head_fraction": Param(
            "float",
            "Share of KV heads turned into streaming heads.",
            minimum=0.0,
            maximum=1.0,
            validated=(0.25, 0.5),
        ),
        "page_size": Param("int", "Tokens per KV page.", 64, minimum=1, validated=(16, 64)),
        "token_budget": Param(
            "int", "Tokens read per step by the non-streaming heads.", minimum=1, validated=(2048, 4096)
        ),
        "sink_tokens": Param("int", "Attention-sink tokens kept by streaming heads.", 64, minimum=0),
        "recent_tokens": Param("int", "Recent tokens kept by streaming heads.", 256, minimum=1),
        "reuse_interval": Param("int", "Decode steps that reuse one page selection.", 4, minimum=1),
    }

    def check_model(self, model):
        return _no_mla(model, self.name)

    def apply_plan(self, plan, model):
        dense = 1.0 - self.streaming_head_fraction
        return _split(plan, dense, self.sink_tokens + self.recent_tokens, self.token_budget, self.page_size)

    def apply_extras(self, extras, model, plan):
        dense = 1.0 - self.streaming_head_fraction
        return extras.add(page_metadata_op(self.page_size, dense, self.reuse_interval, "lserve_page_select"))
