"""Reviewers' verdicts as examples: the YAML of a pack's next version (pure, no I/O).

A flag a reviewer confirmed is a sentence that means its category; one they
dismissed is a lawful sentence the model put too close to one. Either is
worth more as an example than anything a pack's author imagined, so an admin
adds it (`dialguard qa example add`, `POST /api/v1/qa/packs/examples`): the
sentence goes under `semantic.categories.CATEGORY.examples` or under
`semantic.benign` of a NEW version of the pack, which is stored beside the
others (`qa_scoring.pack_store`) and scores nothing until it is activated,
after `dialguard qa eval --semantic --candidate` has shown what it changes.

The pack's text is edited where the sentences go, not loaded and dumped
again: comments and layout a compliance lead wrote stay as they were, and the
difference between two versions reads as the lines added.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from qa_scoring.errors import QaError
from qa_scoring.pack import Pack, parse_pack

BENIGN = "benign"
CONFIRMED_STATES = frozenset({"confirmed", "upheld"})  # the flag stands: an example
DISMISSED_STATES = frozenset({"dismissed", "overturned"})  # it did not: a benign sentence
MAX_VERSION = 32


@dataclass(frozen=True)
class Addition:
    """One reviewed flag's sentence and where it goes: a category, or `benign`."""

    flag_id: int
    text: str
    to: str


def destination(state: str, category: str, wanted: str, flag_id: int) -> str:
    """Where a reviewed flag may go: its own category once confirmed, benign once dismissed.

    A flag still open or under appeal has no verdict to learn from, and a
    confirmed threat is not an example of insult: the review said threat.
    """
    if wanted == BENIGN:
        if state not in DISMISSED_STATES:
            raise QaError(
                f"flag {flag_id} is {state}; only a dismissed or overturned flag is benign",
                hint="dismiss it first, or add it to its category once confirmed",
            )
        return BENIGN
    if state not in CONFIRMED_STATES:
        raise QaError(
            f"flag {flag_id} is {state}; only a confirmed or upheld flag is an example",
            hint="confirm it first, or add a dismissed one with --as benign",
        )
    if wanted != category:
        raise QaError(
            f"flag {flag_id} was confirmed as {category}, not {wanted}",
            hint=f"use --as {category}",
        )
    return category


def next_version(version: str, taken: Collection[str]) -> str:
    """The version after `version` not yet used: 3 -> 4, 1.9 -> 1.10, v2-zh -> v2-zh.1."""
    candidate = version
    for _ in range(1000):
        found = re.fullmatch(r"(.*?)(\d+)", candidate)
        candidate = f"{found.group(1)}{int(found.group(2)) + 1}" if found else f"{candidate}.1"
        if candidate not in taken:
            if len(candidate) > MAX_VERSION:
                break
            return candidate
    raise QaError(f"no free version after {version}", hint="upload the pack with a new version")


def _child(node: MappingNode, key: str) -> Node | None:
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            found: Node = v
            return found
    return None


def _quoted(text: str) -> str:
    """A double-quoted YAML scalar (JSON's escapes are YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def _append(text: str, seq: SequenceNode, items: Sequence[str]) -> tuple[int, str]:
    """Where to insert `items` at the end of a sequence, and what."""
    if seq.flow_style:
        close = seq.end_mark.index - 1  # the "]"
        before = close - 1
        while before > seq.start_mark.index and text[before].isspace():
            before -= 1
        joined = ", ".join(_quoted(t) for t in items)
        if text[before] == "[":
            return before + 1, joined
        if text[before] == ",":
            return before + 1, f" {joined},"
        return before + 1, f", {joined}"
    last = seq.value[-1]
    end = last.end_mark.index
    if end and text[end - 1] == "\n":  # a block scalar ends on the next line
        at = end
    else:
        newline = text.find("\n", end)
        at = len(text) if newline < 0 else newline + 1
    lead = "" if at == 0 or text[at - 1] == "\n" else "\n"
    indent = " " * seq.start_mark.column
    return at, lead + "".join(f"{indent}- {_quoted(t)}\n" for t in items)


def _mapping(node: Node | None, what: str) -> MappingNode:
    if not isinstance(node, MappingNode) or node.flow_style or not node.value:
        raise QaError(
            f"the pack's {what} is not a block mapping this tool can add to",
            hint="add the sentence to the pack by hand and upload it as a new version",
        )
    return node


def with_examples(text: str, additions: Sequence[Addition], version: str) -> str:
    """The pack's YAML with the sentences added and `version:` set; validated like an upload."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    top = _mapping(root, "top level")
    semantic = _mapping(_child(top, "semantic"), "semantic section")
    categories = _mapping(_child(semantic, "categories"), "semantic categories")
    edits: list[tuple[int, int, str]] = []
    version_node = _child(top, "version")
    if not isinstance(version_node, ScalarNode):
        raise QaError("the pack has no version to raise")
    shown = version if re.fullmatch(r"[1-9][0-9]*", version) else _quoted(version)
    edits.append((version_node.start_mark.index, version_node.end_mark.index, shown))
    for to in dict.fromkeys(a.to for a in additions):
        items = [a.text for a in additions if a.to == to]
        if to == BENIGN:
            seq = _child(semantic, BENIGN)
            if seq is None:  # the first benign sentence: a new key above the others
                first = semantic.value[0][0]
                line = first.start_mark.index - first.start_mark.column
                listed = ", ".join(map(_quoted, items))
                entry = " " * first.start_mark.column + f"benign: [{listed}]\n"
                edits.append((line, line, entry))
                continue
        else:
            category = _child(categories, to)
            if category is None:
                raise QaError(
                    f"category {to} has no example set in the pack",
                    hint="add one with its threshold by hand (see docs/qa.md), then add examples",
                )
            seq = _child(_mapping(category, f"category {to}"), "examples")
        if not isinstance(seq, SequenceNode) or (not seq.value and not seq.flow_style):
            raise QaError(
                f"the pack's {to} sentences are not a list this tool can add to",
                hint="add the sentence to the pack by hand and upload it as a new version",
            )
        at, inserted = _append(text, seq, items)
        edits.append((at, at, inserted))
    out = text
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        out = out[:start] + new + out[end:]
    pack = parse_pack(out, source=f"version {version}")
    _check(pack, additions, version)
    return out


def _check(pack: Pack, additions: Sequence[Addition], version: str) -> None:
    """The edit did what it says (a sentence with YAML in it must not become structure)."""
    spec = pack.semantic
    assert spec is not None
    for a in additions:
        held = spec.benign if a.to == BENIGN else spec.categories[a.to].examples
        if a.text.strip() not in {t.strip() for t in held}:
            raise QaError(f"flag {a.flag_id}'s sentence did not land in {a.to}")
    if pack.version != version:
        raise QaError(f"the new pack's version reads {pack.version}, not {version}")


def already_there(pack: Pack, additions: Sequence[Addition]) -> list[Addition]:
    """Additions whose sentence the pack already holds where they would go."""
    spec = pack.semantic
    if spec is None:
        return []
    found = []
    for a in additions:
        if a.to == BENIGN:
            held: tuple[str, ...] = spec.benign
        elif a.to in spec.categories:
            held = spec.categories[a.to].examples
        else:
            continue
        if a.text.strip() in {t.strip() for t in held}:
            found.append(a)
    return found
