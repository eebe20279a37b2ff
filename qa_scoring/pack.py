"""QA rule packs: YAML files a compliance lead edits, checked before any call is scored.

A pack is edited by people who are not programmers, and a typo in it (a
severity of 7, a misspelt field, a regular expression that does not compile)
would otherwise surface as calls silently scored wrong. So a pack is refused
as a whole, at load time, with the file, the line and the field named:

    cn-collections.yaml line 42: rule 'threat-violence': severity must be 1-4, not 7

Line numbers come from the composed YAML node tree (safe_load alone forgets
them). Unknown fields and duplicate keys are errors too: YAML would quietly keep
the last of two `severity:` lines, and a misspelt `negaton: false` would quietly
leave negation on.

Schema (one document):

    name: cn-collections            # shown in results
    version: 1
    language: zh                    # zh | en: how phrases are normalised
    needs_listening_below: 0.6      # optional; flags on weaker words go to a listener
    consequences: {1: 一级违规…, 2: …, 3: …, 4: …}   # penalty text per severity
    categories: {threat: 威胁, …}   # optional; when given, every rule must use one
    rules:
      - id: threat-violence         # [a-z0-9-], unique
        kind: banned                # banned (default) | required | verify-before-disclosure
        category: threat
        severity: 4                 # 1-4 (required rules: optional, default 1)
        speaker: agent              # agent (default) | debtor | any
        description: 威胁上门、人身伤害
        phrases: [去你单位闹]        # pinyin / normalised words, never across punctuation
        patterns: ['派人.{0,4}(去|到)你家']   # case-blind regexes on the text (^ $: its ends)
        tolerance: 0.0              # 0-0.3 normalised edit distance
        exceptions: [按照合同约定]    # present in the same segment: no flag
        negation: true              # default true for banned rules
        ignore_reported: true       # default true for banned: quotes, "您刚才说…"
        within_seconds: 30          # optional: only the first N seconds of the call
    # verify-before-disclosure rules also take ask, confirm and deny, each
    # {phrases: [...], patterns: [...]}: the agent's identity question, the
    # debtor's confirmation and the third party's denial; their phrases and
    # patterns are the disclosure (mentions of the debt), and `negation` there
    # applies to the confirmation (不是我 confirms nothing).
    semantic:                       # optional: meaning-based detection (qa_scoring/semantic.py)
      benign: [按时还款可以减免部分利息, …]   # lawful sentences near the banned ones
      categories:
        threat:
          threshold: 0.3            # probability of the category; `qa calibrate` on tuning data
          examples: [不还钱小心你的家人出事, …]
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

import yaml

from qa_scoring.errors import PackError
from qa_scoring.matching import LANGUAGES, Phrase, compile_phrase
from transcribe.normalise import normalise_pattern

PACKS_DIR = Path(__file__).parent / "packs"
SEVERITIES = (1, 2, 3, 4)
MAX_TOLERANCE = 0.3
DEFAULT_LISTEN_BELOW = 0.6


class RuleKind(enum.StrEnum):
    BANNED = "banned"
    REQUIRED = "required"
    VERIFY = "verify-before-disclosure"


class SpeakerScope(enum.StrEnum):
    AGENT = "agent"
    DEBTOR = "debtor"
    ANY = "any"


@dataclass(frozen=True)
class Wording:
    """What counts as saying something: phrases (ASR-tolerant) or regular expressions."""

    phrases: tuple[Phrase, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.phrases or self.patterns)


@dataclass(frozen=True)
class Rule:
    id: str
    kind: RuleKind
    category: str
    severity: int
    speaker: SpeakerScope
    description: str
    wording: Wording
    tolerance: float = 0.0
    exceptions: tuple[Phrase, ...] = ()
    negation: bool = True
    ignore_reported: bool = True
    within_seconds: float | None = None
    ask: Wording = field(default_factory=Wording)
    confirm: Wording = field(default_factory=Wording)
    deny: Wording = field(default_factory=Wording)
    line: int = 0


@dataclass(frozen=True)
class SemanticCategory:
    """Sentences that mean the category, and how close a sentence must come to one."""

    threshold: float
    examples: tuple[str, ...]


@dataclass(frozen=True)
class SemanticSpec:
    """A pack's example sets: versioned with its rules, so a reviewer's example is a new version.

    `benign` holds lawful sentences close to banned ones ("the bank may take
    legal action under the contract"): they are the classifier's lawful class,
    so a sentence near them loses probability for every category.
    """

    categories: Mapping[str, SemanticCategory]
    benign: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pack:
    name: str
    version: str
    language: str
    consequences: Mapping[int, str]
    categories: Mapping[str, str]
    rules: tuple[Rule, ...]
    needs_listening_below: float = DEFAULT_LISTEN_BELOW
    source: str = ""
    semantic: SemanticSpec | None = None

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def category_label(self, category: str) -> str:
        return self.categories.get(category, category)


# --- YAML with line numbers ---------------------------------------------------------

_Path = tuple[str | int, ...]


def _node_lines(node: yaml.Node, path: _Path, lines: dict[_Path, int], source: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                where = f"{source} line {key_node.start_mark.line + 1}"
                raise PackError(
                    f"{where}: duplicate key '{key}'",
                    hint="YAML keeps only the last of two equal keys; delete one",
                )
            seen.add(key)
            lines[(*path, str(key))] = key_node.start_mark.line + 1
            _node_lines(value_node, (*path, str(key)), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*path, i), lines, source)


class _Checker:
    """Validation helpers that know where each value was written."""

    def __init__(self, source: str, lines: dict[_Path, int]) -> None:
        self.source = source
        self.lines = lines

    def line(self, path: _Path) -> int:
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return 1

    def fail(self, path: _Path, message: str, rule: str | None = None) -> NoReturn:
        where = f"{self.source} line {self.line(path)}"
        prefix = f"rule '{rule}': " if rule else ""
        raise PackError(
            f"{where}: {prefix}{message}", hint="fix the pack and load it again; no rule was used"
        )

    def mapping(
        self, value: object, path: _Path, what: str, rule: str | None = None
    ) -> dict[Any, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"{what} must be a mapping, not {_shown(value)}", rule)
        return value

    def text(self, value: object, path: _Path, name: str, rule: str | None = None) -> str:
        if isinstance(value, bool):
            self.fail(
                path,
                f"{name} must be text, not {str(value).lower()} "
                "(YAML reads a bare yes/no/on/off as true/false: quote it)",
                rule,
            )
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"{name} must be non-empty text, not {_shown(value)}", rule)
        return value.strip()

    def number(
        self, value: object, path: _Path, name: str, low: float, high: float, rule: str | None
    ) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            self.fail(
                path, f"{name} must be a number from {low:g} to {high:g}, not {_shown(value)}", rule
            )
        return float(value)

    def boolean(self, value: object, path: _Path, name: str, rule: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"{name} must be true or false, not {_shown(value)}", rule)
        return value

    def texts(self, value: object, path: _Path, name: str, rule: str) -> list[tuple[str, _Path]]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(path, f"{name} must be a list of text, not {_shown(value)}", rule)
        return [
            (self.text(v, (*path, i), f"{name}[{i}]", rule), (*path, i))
            for i, v in enumerate(value)
        ]

    def unknown(
        self,
        data: dict[Any, Any],
        allowed: frozenset[str],
        path: _Path,
        what: str,
        rule: str | None,
    ) -> None:
        for key in data:
            if str(key) not in allowed:
                known = ", ".join(sorted(allowed))
                self.fail(
                    (*path, str(key)), f"unknown field '{key}' in {what} (known: {known})", rule
                )


def _shown(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value) if isinstance(value, str) else str(value)


# --- validation -------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_TOP = frozenset(
    _words(
        "name version language description needs_listening_below consequences categories rules "
        "semantic"
    )
)
_COMMON = frozenset(
    _words(
        "id kind category severity speaker description phrases patterns tolerance exceptions "
        "negation ignore_reported within_seconds"
    )
)
_VERIFY = _COMMON | {"ask", "confirm", "deny"}
_WORDING = frozenset({"phrases", "patterns"})
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def parse_pack(text: str, source: str = "<pack>") -> Pack:
    """Validate and compile a pack from YAML text; `source` names it in error messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise PackError(
            f"{source} line {line}: not valid YAML: {exc.problem or exc}",
            hint="check indentation and quoting on that line",
        ) from exc
    except yaml.YAMLError as exc:
        raise PackError(f"{source}: not valid YAML: {exc}") from exc
    if node is None:
        raise PackError(
            f"{source} line 1: the pack is empty", hint="see qa_scoring/pack.py for the schema"
        )
    lines: dict[_Path, int] = {}
    _node_lines(node, (), lines, source)
    check = _Checker(source, lines)
    top = check.mapping(data, (), "the pack")
    check.unknown(top, _TOP, (), "the pack", None)
    for key in ("name", "version", "language", "consequences", "rules"):
        if key not in top:
            check.fail((), f"missing field '{key}'")
    name = check.text(top["name"], ("name",), "name")
    version = top["version"]
    if (
        isinstance(version, bool)
        or not isinstance(version, int | float | str)
        or not str(version).strip()
    ):
        check.fail(("version",), f"version must be a number or text, not {_shown(version)}")
    language = top["language"]
    if language not in LANGUAGES:
        check.fail(
            ("language",), f"language must be one of {', '.join(LANGUAGES)}, not {_shown(language)}"
        )
    listen = DEFAULT_LISTEN_BELOW
    if "needs_listening_below" in top:
        listen = check.number(
            top["needs_listening_below"],
            ("needs_listening_below",),
            "needs_listening_below",
            0,
            1,
            None,
        )
    consequences = _consequences(check, top["consequences"])
    categories: dict[str, str] = {}
    if "categories" in top:
        raw = check.mapping(top["categories"], ("categories",), "categories")
        categories = {
            str(k): check.text(v, ("categories", str(k)), f"category '{k}'") for k, v in raw.items()
        }
    raw_rules = top["rules"]
    if not isinstance(raw_rules, list) or not raw_rules:
        check.fail(("rules",), f"rules must be a non-empty list, not {_shown(raw_rules)}")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, raw_rule in enumerate(raw_rules):
        rule = _rule(check, raw_rule, ("rules", i), language, categories)
        if rule.id in seen:
            check.fail(
                ("rules", i, "id"),
                f"id '{rule.id}' is already used by the rule on line {seen[rule.id]}",
            )
        seen[rule.id] = rule.line
        rules.append(rule)
    semantic = _semantic(check, top["semantic"], categories) if "semantic" in top else None
    return Pack(
        name=name,
        version=str(version).strip(),
        language=language,
        consequences=consequences,
        categories=categories,
        rules=tuple(rules),
        needs_listening_below=listen,
        source=source,
        semantic=semantic,
    )


def _semantic(check: _Checker, raw: object, categories: Mapping[str, str]) -> SemanticSpec:
    path: _Path = ("semantic",)
    data = check.mapping(raw, path, "semantic")
    check.unknown(data, frozenset({"benign", "categories"}), path, "semantic", None)
    benign = tuple(
        text for text, _ in check.texts(data.get("benign", []), (*path, "benign"), "benign", "")
    )
    if "categories" not in data:
        check.fail(path, "semantic needs 'categories'")
    table = check.mapping(data["categories"], (*path, "categories"), "semantic categories")
    result: dict[str, SemanticCategory] = {}
    for key, value in table.items():
        name = str(key)
        where: _Path = (*path, "categories", name)
        if categories and name not in categories:
            check.fail(where, f"semantic category '{name}' is not declared under categories")
        entry = check.mapping(value, where, f"semantic category '{name}'")
        check.unknown(entry, frozenset({"threshold", "examples"}), where, name, None)
        for needed in ("threshold", "examples"):
            if needed not in entry:
                check.fail(where, f"semantic category '{name}' needs '{needed}'")
        threshold = check.number(entry["threshold"], (*where, "threshold"), "threshold", 0, 1, None)
        examples = tuple(
            text for text, _ in check.texts(entry["examples"], (*where, "examples"), "examples", "")
        )
        if not examples:
            check.fail((*where, "examples"), f"semantic category '{name}' has no examples")
        result[name] = SemanticCategory(threshold, examples)
    return SemanticSpec(result, benign)


def _consequences(check: _Checker, raw: object) -> dict[int, str]:
    table = check.mapping(raw, ("consequences",), "consequences")
    result: dict[int, str] = {}
    for key, value in table.items():
        level = int(key) if isinstance(key, int | str) and str(key).strip().isdigit() else None
        if level not in SEVERITIES:
            check.fail(
                ("consequences", str(key)), f"consequences: level must be 1-4, not {_shown(key)}"
            )
        result[level] = check.text(
            value, ("consequences", str(key)), f"consequence of level {level}"
        )
    for level in SEVERITIES:
        if level not in result:
            check.fail(
                ("consequences",), f"consequences: level {level} is missing (all of 1-4 are needed)"
            )
    return result


def _rule(
    check: _Checker, raw: object, path: _Path, language: str, categories: Mapping[str, str]
) -> Rule:
    data = check.mapping(raw, path, "a rule")
    rule_id, kind = _identity(check, data, path)
    check.unknown(data, _VERIFY if kind is RuleKind.VERIFY else _COMMON, path, "a rule", rule_id)
    if "category" not in data:
        check.fail(path, "missing field 'category'", rule_id)
    category = check.text(data["category"], (*path, "category"), "category", rule_id)
    if categories and category not in categories:
        check.fail(
            (*path, "category"), f"category '{category}' is not declared under categories", rule_id
        )
    if "severity" not in data and kind is not RuleKind.REQUIRED:
        check.fail(path, "missing field 'severity'", rule_id)
    severity = data.get("severity", 1)
    if isinstance(severity, bool) or severity not in SEVERITIES:
        check.fail((*path, "severity"), f"severity must be 1-4, not {_shown(severity)}", rule_id)
    speaker_raw = data.get("speaker", SpeakerScope.AGENT.value)
    if speaker_raw not in {s.value for s in SpeakerScope}:
        check.fail(
            (*path, "speaker"),
            f"speaker must be agent, debtor or any, not {_shown(speaker_raw)}",
            rule_id,
        )
    description = ""
    if "description" in data:
        description = check.text(
            data["description"], (*path, "description"), "description", rule_id
        )
    wording = _wording(check, data, path, language, rule_id)
    if not wording:
        check.fail(path, "needs at least one of 'phrases' or 'patterns'", rule_id)
    verify = _verify_wordings(check, data, path, language, rule_id, kind)
    return Rule(
        id=rule_id,
        kind=kind,
        category=category,
        severity=int(severity),
        speaker=SpeakerScope(speaker_raw),
        description=description,
        wording=wording,
        ask=verify.get("ask", Wording()),
        confirm=verify.get("confirm", Wording()),
        deny=verify.get("deny", Wording()),
        line=check.line(path),
        **_behaviour(check, data, path, language, rule_id, kind),
    )


def _identity(check: _Checker, data: dict[Any, Any], path: _Path) -> tuple[str, RuleKind]:
    if "id" not in data:
        check.fail(path, "rule has no 'id'")
    rule_id = check.text(data["id"], (*path, "id"), "id")
    if not _RULE_ID.match(rule_id):
        check.fail((*path, "id"), f"id must be lower-case letters, digits and '-', not {rule_id!r}")
    kind_raw = data.get("kind", RuleKind.BANNED.value)
    if kind_raw not in {k.value for k in RuleKind}:
        kinds = ", ".join(k.value for k in RuleKind)
        check.fail((*path, "kind"), f"kind must be one of {kinds}, not {_shown(kind_raw)}", rule_id)
    return rule_id, RuleKind(kind_raw)


def _behaviour(
    check: _Checker, data: dict[Any, Any], path: _Path, language: str, rule_id: str, kind: RuleKind
) -> dict[str, Any]:
    """Tolerance, exceptions, context and time scope, with the defaults of the rule's kind."""
    tolerance = 0.0
    if "tolerance" in data:
        tolerance = check.number(
            data["tolerance"], (*path, "tolerance"), "tolerance", 0, MAX_TOLERANCE, rule_id
        )
    exceptions = tuple(
        _phrase(check, text, where, language, rule_id)
        for text, where in check.texts(
            data.get("exceptions", []), (*path, "exceptions"), "exceptions", rule_id
        )
    )
    # A banned phrase said in denial is no violation; a required statement said in
    # denial ("我不是催收公司的") is rare and still says who is calling.
    banned = kind is not RuleKind.REQUIRED
    within: float | None = None
    if data.get("within_seconds") is not None:
        within = check.number(
            data["within_seconds"], (*path, "within_seconds"), "within_seconds", 1, 86400, rule_id
        )
    return {
        "tolerance": tolerance,
        "exceptions": exceptions,
        "negation": check.boolean(
            data.get("negation", banned), (*path, "negation"), "negation", rule_id
        ),
        "ignore_reported": check.boolean(
            data.get("ignore_reported", banned),
            (*path, "ignore_reported"),
            "ignore_reported",
            rule_id,
        ),
        "within_seconds": within,
    }


def _verify_wordings(
    check: _Checker, data: dict[Any, Any], path: _Path, language: str, rule_id: str, kind: RuleKind
) -> dict[str, Wording]:
    result: dict[str, Wording] = {}
    if kind is not RuleKind.VERIFY:
        return result
    for name in ("ask", "confirm", "deny"):
        if name not in data:
            if name == "deny":
                continue
            check.fail(path, f"a {kind.value} rule needs '{name}'", rule_id)
        sub = check.mapping(data[name], (*path, name), name, rule_id)
        check.unknown(sub, _WORDING, (*path, name), name, rule_id)
        result[name] = _wording(check, sub, (*path, name), language, rule_id)
        if not result[name]:
            check.fail(
                (*path, name), f"{name} needs at least one of 'phrases' or 'patterns'", rule_id
            )
    return result


def _wording(
    check: _Checker, data: dict[Any, Any], path: _Path, language: str, rule_id: str
) -> Wording:
    phrases = tuple(
        _phrase(check, text, where, language, rule_id)
        for text, where in check.texts(
            data.get("phrases", []), (*path, "phrases"), "phrases", rule_id
        )
    )
    patterns: list[re.Pattern[str]] = []
    for text, where in check.texts(
        data.get("patterns", []), (*path, "patterns"), "patterns", rule_id
    ):
        try:
            # In the transcript's form (simplified, ASCII digits): transcribe.normalise.
            patterns.append(re.compile(normalise_pattern(text), re.IGNORECASE | re.MULTILINE))
        except re.error as exc:
            check.fail(where, f"pattern {text!r} is not a valid regular expression: {exc}", rule_id)
    return Wording(phrases, tuple(patterns))


def _phrase(check: _Checker, text: str, where: _Path, language: str, rule_id: str) -> Phrase:
    try:
        return compile_phrase(text, language)
    except ValueError as exc:
        check.fail(where, str(exc), rule_id)


# --- loading ----------------------------------------------------------------------------


def shipped_packs() -> list[str]:
    return sorted(p.stem for p in PACKS_DIR.glob("*.yaml"))


def resolve_pack(name_or_path: str | Path) -> Path:
    """A shipped pack by name ("cn-collections"), else a path to a YAML file."""
    text = str(name_or_path)
    if isinstance(name_or_path, str) and re.fullmatch(r"[A-Za-z0-9_-]+", text):
        shipped = PACKS_DIR / f"{text}.yaml"
        if shipped.is_file():
            return shipped
        if not Path(text).exists():
            raise PackError(
                f"no rule pack named '{text}'",
                hint=f"shipped packs: {', '.join(shipped_packs())}; or give a path to a YAML file",
            )
    path = Path(name_or_path)
    if not path.is_file():
        raise PackError(
            f"rule pack {path} does not exist",
            hint=f"shipped packs: {', '.join(shipped_packs())}; or give a path to a YAML file",
        )
    return path


def load_pack(name_or_path: str | Path) -> Pack:
    """Load, validate and compile a pack; cached while the file is unchanged."""
    path = resolve_pack(name_or_path).resolve()
    stat = path.stat()
    return _load(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int, size: int) -> Pack:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(
            f"cannot read rule pack {path}: {exc}", hint="packs are UTF-8 YAML files"
        ) from exc
    return parse_pack(text, source=path.name)
