"""The Method base class: typed parameters with help text, validated ranges, citation, and the
hooks through which a method changes costs (workload, dtypes, KV plan, decode loop).

A method never computes times itself: it edits the inputs of the one engine, so every method is
costed by the same roofline and memory model as the dense baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from roofline.simulator.errors import did_you_mean, short
from roofline.simulator.scenario import check_value
from roofline.simulator.scenario_schema import FieldSpec
from roofline.simulator.units import is_token_field, parse_token_count

REQUIRED = object()

# Application order: earlier stages run first; their output is the next stage's input.
WORKLOAD, WEIGHTS, KV_FORMAT, KV_POLICY, KV_SELECTION, PREFILL, DECODE_LOOP, CONTEXT = range(8)


PARAM_MAXIMUM = 1e10  # upper bound of a numeric parameter that states none (tokens, ranks, ratios)


@dataclass(frozen=True)
class Param(FieldSpec):
    """A method parameter: a scenario field spec plus the range its paper evaluated."""

    default: object = REQUIRED
    validated: tuple | None = None  # (lo, hi) the paper evaluated; outside -> provenance warning

    def range_text(self) -> str:
        """How `roofline methods` and the dashboard state the valid values: "one of a, b", "range
        [lo, hi]" (a refused minimum opens the bracket: "(0, 1]"), or "" when unbounded."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        if self.minimum is None and self.maximum is None:
            return ""
        lo = "" if self.minimum is None else f"{self.minimum:g}"
        hi = "" if self.maximum is None else f"{self.maximum:g}"
        return f"range {'(' if self.exclusive_minimum else '['}{lo}, {hi}]"

    def problem(self, name: str, value) -> str | None:
        spec = self
        if self.kind in ("int", "float") and self.maximum is None:
            spec = replace(self, maximum=PARAM_MAXIMUM)  # no size past it is meaningful; keeps numpy exact
        return check_value(name, value, spec, {})


class Method:
    """One long-context method. Subclasses set the class attributes and override hooks."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    changes: ClassVar[str] = ""  # the cost terms it changes, for `roofline methods`
    stage: ClassVar[int] = KV_POLICY
    exclusive: ClassVar[tuple] = ()  # categories of which a stack may hold one method
    params: ClassVar[dict] = {}

    def __init__(self, **values):
        self.values = {k: (p.default if k not in values else values[k]) for k, p in self.params.items()}

    def __getattr__(self, key):
        values = self.__dict__.get("values", {})
        if key in values:
            return values[key]
        raise AttributeError(key)

    @classmethod
    def parse(cls, spec: dict, where: str) -> tuple:
        """(method or None, problems) from a scenario's {name: ..., <params>} mapping."""
        problems = []
        spec = {  # a token count may be written 4k (units.parse_token_count)
            k: parse_token_count(v)
            if k in cls.params and cls.params[k].kind == "int" and is_token_field(k)
            else v
            for k, v in spec.items()
        }
        unknown = [k for k in spec if k != "name" and k not in cls.params]
        for k in unknown:
            problems.append(
                f"{where}: unknown parameter {short(k)} of {cls.name}.{did_you_mean(k, cls.params)} "
                f"Valid: {', '.join(cls.params) or 'none'}"
            )
        for k, p in cls.params.items():
            if k not in spec:
                if p.default is REQUIRED:
                    problems.append(f"{where}: {cls.name} needs parameter {k!r}: {p.help}")
                continue
            problem = p.problem(k, spec[k])
            if problem:
                problems.append(f"{where}.{problem}")
        if problems:
            return None, problems
        method = cls(**{k: v for k, v in spec.items() if k != "name"})
        return method, [f"{where}: {p}" for p in method.check_values()]

    def check_values(self) -> list:
        """Cross-parameter problems (override)."""
        return []

    def check_model(self, model) -> list:
        """Problems applying this method to `model` (override), e.g. head-level methods on MLA."""
        return []

    def validated_warnings(self) -> list:
        out = []
        for k, p in self.params.items():
            v = self.values.get(k)
            if p.validated and isinstance(v, (int, float)) and not isinstance(v, bool):
                lo, hi = p.validated
                if not lo <= v <= hi:
                    out.append(
                        f"{self.name}.{k}={v} is outside the range its paper evaluated ({lo:g}..{hi:g}); accuracy there is unknown"
                    )
        return out

    def warnings(self, model) -> list:
        """Static warnings for provenance (override to add)."""
        return self.validated_warnings()

    def notes(self, model) -> list:
        """Information for provenance that is not a problem (override to add)."""
        return []

    # Hooks (override the ones the method needs). Each returns its input, changed.
    def apply_workload(self, wl, model):
        return wl

    def apply_dtypes(self, dtypes):
        return dtypes

    def apply_plan(self, plan, model):
        return plan

    def apply_extras(self, extras, model, plan):
        """Run-time extras (runplan.RunExtras): the method's own ops, host-link overlap, offloaded
        weights, agent calls; `plan` is the KV policy after this method's apply_plan."""
        return extras

    def apply_model(self, model):
        return model

    def apply_loop(self, loop, model, plan, resolve_model):
        """The decode loop (speculative decoding); None = plain decode."""
        return loop

    def referenced_models(self) -> list:
        """Other models this method runs (draft models), validated when loading."""
        return []

    def describe(self) -> str:
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in self.values.items()) + ")"
