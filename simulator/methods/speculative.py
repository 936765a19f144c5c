"""Speculative decoding methods: a draft model (Leviathan et al., arXiv:2211.17192; Chen et al.,
arXiv:2302.01318) and TriForce's hierarchy (Sun et al., arXiv:2404.11912).

* speculative with draft_model 'self': the target drafts with a `draft_budget_tokens` KV subset
  (self-speculation with a sparse-KV draft: MagicDec, Chen et al., arXiv:2408.11049), verified with
  its full cache; the draft cache is an extra buffer.
* speculative: `draft_model` proposes `draft_tokens` (gamma) tokens, the target verifies gamma + 1
  in one step; `acceptance_rate` alpha per token. The draft prefills the prompt and keeps its own
  weights and KV cache in GPU memory.
* triforce: a tiny model (`draft_model`, StreamingLLM cache of `tiny_cache_tokens`) drafts
  `tiny_draft_tokens` for the target reading only a retrieval cache of `retrieval_budget_tokens`
  (self-speculation), which drafts `draft_tokens` for the target with its full cache. The target's
  retrieval cache is an extra KV buffer. The acceptance rates are inputs: TriForce reports them per
  dataset; the defaults of the tiny level are illustrative, set them from measurements.

The draft must share the target's tokenizer (same vocabulary size): checked when loading.
"""

from __future__ import annotations

from roofline.simulator.decode_loop import SpecLevel
from roofline.simulator.kvplan import DENSE, HeadGroup, KVPlan, window
from roofline.simulator.methods.base_method import DECODE_LOOP, Method, Param


class Speculative(Method):
    name = "speculative"
    summary = "Draft-model speculative decoding (draft gamma tokens, verify gamma + 1)"
    citation = "Leviathan et al. 2023 (arXiv:2211.17192); Chen et al. 2023 (arXiv:2302.01318)"
    changes = "decode step = (gamma x draft step + verify of gamma+1 tokens) / expected tokens; draft weights, KV and prefill"
    stage = DECODE_LOOP
    exclusive = ("speculation",)
    params = {
        "draft_model": Param(
            "str",
            "Zoo name or config.json path of the draft model (same tokenizer), or 'self' for self-speculation with a sparse KV.",
        ),
        "draft_tokens": Param(
            "int", "Tokens drafted per verification (gamma).", minimum=1, maximum=64, validated=(1, 8)
        ),
        "acceptance_rate": Param(
            "float", "Probability that each drafted token is accepted (alpha).", minimum=0.0, maximum=1.0
        ),
        "draft_budget_tokens": Param(
            "int",
            "With draft_model 'self': KV tokens the self-draft reads (a retrieval cache).",
            4096,
            minimum=1,
        ),
    }

    def referenced_models(self) -> list:
        return [] if self.draft_model == "self" else [self.draft_model]

    def apply_loop(self, loop, model, plan, resolve_model):
        if (
            self.draft_model == "self"
        ):  # self-speculation from a sparse KV (MagicDec, TriForce's middle level)
            b = self.draft_budget_tokens
            sparse = KVPlan(groups=(HeadGroup(1.0, window(0.0), window(b), attended=window(b)),))
            return SpecLevel(self.draft_tokens, self.acceptance_rate, sparse, draft_cache_tokens=b)
        return SpecLevel(
            self.draft_tokens, self.acceptance_rate, DENSE, draft_model=resolve_model(self.draft_model)
        )


class TriForce(Method):
    name = "triforce"
    summary = "Hierarchical speculation: tiny model -> retrieval-cache self-draft -> full verify"
    citation = "TriForce, Sun et al. 2024 (arXiv:2404.11912)"
    changes = "decode step from a two-level draft/verify hierarchy; retrieval cache and tiny model in memory"
    stage = DECODE_LOOP
    exclusive = ("speculation",)
    params = {
        "draft_model": Param("str", "The tiny draft model (TriForce uses llama-68m).", "llama-68m"),
        "retrieval_budget_tokens": Param(
            "int",
            "Tokens of the target's retrieval cache (self-draft).",
            4096,
            minimum=1,
            validated=(2048, 8192),
        ),
        "draft_tokens": Param(
            "int",
            "Tokens the retrieval-cache self-draft proposes per full verification.",
            minimum=1,
            maximum=64,
        ),
        "acceptance_rate": Param(
            "float", "Acceptance of retrieval-cache drafts by the full target.", minimum=0.0, maximum=1.0
        ),
        "tiny_draft_tokens": Param(
            "int", "Tokens the tiny model proposes per self-draft verification.", 4, minimum=1, maximum=64
        ),
        "tiny_acceptance_rate": Param(
            "float",
            "Acceptance of tiny-model drafts by the self-draft (illustrative default).",
            0.7,
            minimum=0.0,
            maximum=1.0,
        ),
        "tiny_cache_tokens": Param(
            "int", "StreamingLLM cache of the tiny model (sinks + recent).", 256, minimum=1
        ),
    }

    def referenced_models(self) -> list:
        return [self.draft_model]

    def apply_loop(self, loop, model, plan, resolve_model):
        tiny_plan = KVPlan(
            groups=(HeadGroup(1.0, window(self.tiny_cache_tokens), window(self.tiny_cache_tokens)),)
        )
        retrieval = KVPlan(
            groups=(
                HeadGroup(
                    1.0,
                    window(0.0),
                    window(self.retrieval_budget_tokens),
                    attended=window(self.retrieval_budget_tokens),
                ),
            )
        )
        inner = SpecLevel(
            self.tiny_draft_tokens,
            self.tiny_acceptance_rate,
            tiny_plan,
            draft_model=resolve_model(self.draft_model),
        )
        return SpecLevel(
            self.draft_tokens,
            self.acceptance_rate,
            retrieval,
            inner=inner,
            draft_cache_tokens=self.retrieval_budget_tokens,
        )
