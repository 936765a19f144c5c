"""YAML text -> Python data, safely and in bounded time: `yaml.safe_load` semantics (no `!!python`
tags), but the document's node graph is composed first and its aliases are counted before anything
is constructed, so an anchor bomb (a few hundred bytes that expand to millions of elements) is
refused at once instead of being expanded by whatever reads the result.

What the bound leaves alone: anchors reused a few times (`workload: *base`). What it leaves to the
caller: the upload's byte size, and every check of the mapping's fields.
"""

from __future__ import annotations

import yaml

MAX_ALIAS_EXPANSION = 10_000  # nodes that aliases add on top of the document's own nodes
MAX_DEPTH = 100  # nesting of sequences and mappings; libyaml's composer recurses in C (a crash, not an error)
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YAMLBombError(ValueError):
    """A document whose aliases expand past the bound, refer to themselves, or that nests too deep."""


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than `max_depth` from the parser's event stream (iterative), before
    anything recursive sees the document."""
    depth = 0
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > max_depth:
                raise YAMLBombError(f"nested more than {max_depth} levels deep")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def expanded_size(root) -> tuple:
    """(expanded, distinct): how many nodes the document has once every alias is expanded, and
    how many distinct nodes it holds. Counts over the composed graph (each shared node once, as
    big integers), never expands; iterative, so deep nesting cannot overflow the stack."""
    size: dict = {}
    on_path: set = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if key in size:
            continue
        if key in on_path:
            raise YAMLBombError("an alias refers to the node that contains it")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)
    return size.get(id(root), 0), len(size)


def load(text: str, max_alias_expansion: int = MAX_ALIAS_EXPANSION):
    """The data of one YAML document, like `yaml.safe_load`; raises yaml.YAMLError for bad YAML and
    YAMLBombError when it nests too deep or aliases would add more than `max_alias_expansion` nodes."""
    check_depth(text)
    loader = Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if "*" in text:  # without an alias there is nothing to expand
            expanded, distinct = expanded_size(root)
            if expanded > distinct + max_alias_expansion:
                raise YAMLBombError(
                    f"its aliases expand to more than {max_alias_expansion:,} extra elements; "
                    "write the values out instead"
                )
        return loader.construct_document(root)
    finally:
        loader.dispose()
