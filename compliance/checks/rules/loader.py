"""Read, validate and compile the rule files, once per rule-set version.

The rules folder contains ``facts.json`` (the fact vocabulary) and one
``<REGULATION>.json`` per regulation. The rule-set version is the SHA-256
of all of these files, so any edit gives a new version. Compiled rules are
cached by regulation and version: while the files are unchanged, every
evaluation reuses the same compiled CEL programs.
"""

import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from cel_expr_python import cel

from compliance.catalog.canonical import canonical_control_id
from compliance.catalog.loader import DATA_DIR
from compliance.catalog.models import Regulation, Severity
from compliance.checks.rules.facts import FACTS_FILE_NAME, parse_vocabulary
from compliance.inventory.models import EntityType

logger = logging.getLogger(__name__)

RULES_DIR = DATA_DIR / "rules"
MAX_EXPRESSION_LENGTH = 2000
RULE_KEYS = (
    "id",
    "control_id",
    "title",
    "severity",
    "entity_types",
    "facts",
    "expression",
    "remediation",
)
RULE_ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
UNDECLARED_PATTERN = re.compile(r"undeclared reference to '([^']+)'")


class RuleFileError(Exception):
    """A rule file or the fact vocabulary is invalid; the message names each file and rule."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("Invalid rule files:\n" + "\n".join(f"- {p}" for p in self.problems))


@dataclass(frozen=True)
class Rule:
    """One rule as written in a rule file, after validation."""

    regulation: Regulation
    id: str
    control_id: str
    title: str
    severity: Severity
    entity_types: frozenset
    facts: tuple
    expression: str
    remediation: str
    file_name: str


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its compiled CEL program and the vocabulary entries of its facts."""

    rule: Rule
    program: object
    facts: tuple


@dataclass(frozen=True)
class RuleSet:
    """The compiled rules of one regulation at one rule-set version."""

    regulation: Regulation
    version: str
    rules: tuple

    def by_control(self):
        """Return ``{control_id: CompiledRule}``, the first rule of each control."""
        first = {}
        for compiled in self.rules:
            first.setdefault(compiled.rule.control_id, compiled)
        return first

    def all_by_control(self):
        """Return ``{control_id: [CompiledRule, ...]}``.

        Shipped files have one rule per control, but a tenant may add rules
        to a shipped control, so a tenant's rule set can have several.
        """
        grouped = {}
        for compiled in self.rules:
            grouped.setdefault(compiled.rule.control_id, []).append(compiled)
        return grouped


_cache = {}
_cache_lock = threading.Lock()


def clear_cache():
    """Forget every compiled rule set, so the next request compiles again."""
    with _cache_lock:
        _cache.clear()


def _compile_program(declarations, expression):
    """Compile ``expression`` in an environment that declares only ``declarations``.

    Every compilation goes through here, so that a test can count them.
    cel-expr-python raises ``RuntimeError`` with CEL's message on a syntax
    or type error.
    """
    environment = cel.NewEnv(variables=declarations)
    return environment.compile(expression)


def read_rule_files(rules_dir=RULES_DIR):
    """Return ``{file name: bytes}`` of the JSON files in ``rules_dir``."""
    return {path.name: path.read_bytes() for path in sorted(Path(rules_dir).glob("*.json"))}


def rule_set_version(files):
    """Return the SHA-256 over the names and contents of ``files``, in name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        content = files[name]
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def rule_set(regulation, rules_dir=RULES_DIR):
    """Return the compiled ``RuleSet`` of ``regulation``, compiling it on first use.

    The files are read and hashed on every call, which is cheap, so an edited
    rule file takes effect on the next check. Raises ``RuleFileError`` when
    the vocabulary or the regulation's file is invalid.
    """
    regulation = Regulation.parse(regulation)
    files = read_rule_files(rules_dir)
    version = rule_set_version(files)
    key = (regulation, version)

    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        compiled = _build_rule_set(regulation, version, files, Path(rules_dir))
        for stale in [k for k in _cache if k[0] == regulation and k[1] != version]:
            del _cache[stale]
        _cache[key] = compiled

    logger.info("compiled %d %s rules, rule set %s", len(compiled.rules), regulation, version[:12])
    return compiled


def load_vocabulary(rules_dir=RULES_DIR):
    """Return the fact vocabulary ``{path: Fact}``, parsed once per content of facts.json.

    Raises ``RuleFileError`` when the file is missing or invalid.
    """
    path = Path(rules_dir) / FACTS_FILE_NAME
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise RuleFileError([f"{path}: file not found"]) from None
    key = ("vocabulary", hashlib.sha256(content).hexdigest())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = _load_vocabulary({FACTS_FILE_NAME: content}, Path(rules_dir))
            for stale in [k for k in _cache if k[0] == "vocabulary" and k != key]:
                del _cache[stale]
            _cache[key] = cached
    return cached


def validate_rule_files(rules_dir=RULES_DIR):
    """Compile every regulation's rules and return ``{regulation: RuleSet}``.

    Raises ``RuleFileError`` listing the problems of all files together.
    """
    problems = []
    rule_sets = {}
    unexpected = _unexpected_files(read_rule_files(rules_dir))
    problems.extend(unexpected)
    for regulation in Regulation:
        try:
            rule_sets[regulation] = rule_set(regulation, rules_dir)
        except RuleFileError as error:
            problems.extend(p for p in error.problems if p not in problems)
    if problems:
        raise RuleFileError(problems)
    return rule_sets


def _unexpected_files(files):
    expected = {FACTS_FILE_NAME} | {f"{regulation.value}.json" for regulation in Regulation}
    return [
        f"{name}: unexpected file; the rules folder holds {FACTS_FILE_NAME} and one "
        "<REGULATION>.json per regulation"
        for name in sorted(set(files) - expected)
    ]


def _build_rule_set(regulation, version, files, rules_dir):
    vocabulary = _load_vocabulary(files, rules_dir)
    file_name = f"{regulation.value}.json"
    if file_name not in files:
        raise RuleFileError([f"{rules_dir / file_name}: file not found"])

    source = rules_dir / file_name
    document, problem = _parse_json(files[file_name])
    if problem:
        raise RuleFileError([f"{source}: {problem}"])
    rules, problems = _parse_rules(regulation, document, file_name)
    compiled = []
    for rule in rules:
        program, rule_problems = _compile_rule(rule, vocabulary)
        problems.extend(rule_problems)
        if program is not None:
            facts = tuple(vocabulary[path] for path in rule.facts)
            compiled.append(CompiledRule(rule=rule, program=program, facts=facts))
    if problems:
        raise RuleFileError([f"{source}: {problem}" for problem in problems])
    return RuleSet(regulation=regulation, version=version, rules=tuple(compiled))


def _load_vocabulary(files, rules_dir):
    path = rules_dir / FACTS_FILE_NAME
    if FACTS_FILE_NAME not in files:
        raise RuleFileError([f"{path}: file not found"])
    document, problem = _parse_json(files[FACTS_FILE_NAME])
    if problem:
        raise RuleFileError([f"{path}: {problem}"])
    vocabulary, problems = parse_vocabulary(document)
    if problems:
        raise RuleFileError([f"{path}: {problem}" for problem in problems])
    return vocabulary


def _parse_json(content):
    try:
        return json.loads(content), None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"invalid JSON: {error}"


def _parse_rules(regulation, document, file_name):
    """Return ``(rules, problems)`` for a parsed rule file, checking everything but CEL."""
    if not isinstance(document, dict) or set(document) != {"regulation", "rules"}:
        return [], ['the file must be a JSON object with the keys "regulation" and "rules"']
    if document["regulation"] != regulation.value:
        return [], [
            f"regulation is {document['regulation']!r}, but the file name says {regulation.value!r}"
        ]
    if not isinstance(document["rules"], list) or not document["rules"]:
        return [], ["rules must be a non-empty list"]

    rules, problems = [], []
    seen_ids, seen_controls = set(), {}
    for index, entry in enumerate(document["rules"]):
        label = _rule_label(index, entry)
        rule, rule_problems = _parse_rule(regulation, entry, file_name)
        problems.extend(f"{label}: {problem}" for problem in rule_problems)
        if rule is None:
            continue
        if rule.id in seen_ids:
            problems.append(f"{label}: duplicate rule id")
        if rule.control_id in seen_controls:
            problems.append(
                f"{label}: control {rule.control_id} already has rule "
                f"{seen_controls[rule.control_id]!r}; write one rule per control"
            )
        seen_ids.add(rule.id)
        seen_controls.setdefault(rule.control_id, rule.id)
        rules.append(rule)
    return rules, problems


def _rule_label(index, entry):
    rule_id = entry.get("id") if isinstance(entry, dict) else None
    return f"rule {rule_id!r}" if isinstance(rule_id, str) else f"rule #{index + 1}"


def _parse_rule(regulation, entry, file_name):
    """Return ``(Rule or None, problems)`` for one entry of a rule file."""
    if not isinstance(entry, dict):
        return None, ["must be a JSON object"]
    problems = []
    missing = [key for key in RULE_KEYS if key not in entry]
    unknown = sorted(set(entry) - set(RULE_KEYS))
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown keys: {', '.join(unknown)}")
    if problems:
        return None, problems

    for key in ("id", "control_id", "title", "expression", "remediation"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            problems.append(f"{key} must be a non-empty string")
    if problems:
        return None, problems

    problems.extend(_id_problems(entry["id"]))
    problems.extend(_control_problems(regulation, entry["control_id"]))
    problems.extend(_severity_problems(entry["severity"]))
    problems.extend(_entity_type_problems(entry["entity_types"]))
    problems.extend(_facts_list_problems(entry["facts"]))
    if len(entry["expression"]) > MAX_EXPRESSION_LENGTH:
        problems.append(
            f"expression has {len(entry['expression'])} characters; "
            f"the maximum is {MAX_EXPRESSION_LENGTH}"
        )
    if problems:
        return None, problems

    rule = Rule(
        regulation=regulation,
        id=entry["id"],
        control_id=entry["control_id"],
        title=entry["title"].strip(),
        severity=Severity(entry["severity"]),
        entity_types=frozenset(entry["entity_types"]),
        facts=tuple(entry["facts"]),
        expression=entry["expression"],
        remediation=entry["remediation"].strip(),
        file_name=file_name,
    )
    return rule, []


def _id_problems(rule_id):
    if RULE_ID_PATTERN.match(rule_id):
        return []
    return [f"invalid id {rule_id!r}; use lower-case words joined by hyphens"]


def _control_problems(regulation, control_id):
    try:
        canonical = canonical_control_id(regulation, control_id)
    except ValueError as error:
        return [f"unknown control: {error}"]
    if canonical != control_id:
        return [f"control_id {control_id!r} must be written in canonical form {canonical!r}"]
    return []


def _severity_problems(severity):
    if severity in Severity.values:
        return []
    return [f"invalid severity {severity!r}; expected one of {', '.join(Severity.values)}"]


def _entity_type_problems(entity_types):
    if not isinstance(entity_types, list) or not entity_types:
        return ["entity_types must be a non-empty list"]
    problems = []
    unknown = [value for value in entity_types if value not in EntityType.values]
    if unknown:
        problems.append(
            f"unknown entity types {unknown!r}; expected a subset of {EntityType.values!r}"
        )
    if len(set(map(str, entity_types))) != len(entity_types):
        problems.append("entity_types lists a type twice")
    return problems


def _facts_list_problems(facts):
    if not isinstance(facts, list) or not facts:
        return ["facts must be a non-empty list of fact paths"]
    if not all(isinstance(path, str) for path in facts):
        return ["facts must contain only strings"]
    if len(set(facts)) != len(facts):
        return ["facts lists a path twice"]
    return []


def _compile_rule(rule, vocabulary):
    """Compile ``rule`` against its declared facts; return ``(program or None, problems)``.

    The facts list must match the expression exactly: the expression is
    compiled with only the listed facts declared, so reading any other
    name fails, and each listed fact is checked by compiling once without
    it, which must fail too.
    """
    label = f"rule {rule.id!r}"
    unknown = [path for path in rule.facts if path not in vocabulary]
    if unknown:
        return None, [
            f"{label}: unknown facts {unknown!r}; add them to {FACTS_FILE_NAME} or fix the paths"
        ]

    declarations = {path: vocabulary[path].cel_type for path in rule.facts}
    try:
        program = _compile_program(declarations, rule.expression)
    except (RuntimeError, ValueError) as error:
        return None, [f"{label}: {_describe_compile_error(error, vocabulary)}"]
    if program.return_type() != cel.Type.BOOL:
        return None, [
            f"{label}: expression returns {program.return_type().name()}, expected a boolean"
        ]

    unused = [path for path in rule.facts if _compiles_without(declarations, path, rule)]
    if unused:
        return None, [f"{label}: facts {unused!r} are listed but the expression does not read them"]
    return program, []


def _compiles_without(declarations, path, rule):
    reduced = {name: value for name, value in declarations.items() if name != path}
    try:
        _compile_program(reduced, rule.expression)
    except (RuntimeError, ValueError):
        return False
    return True


def _describe_compile_error(error, vocabulary):
    message = str(error)
    match = UNDECLARED_PATTERN.search(message)
    if match and match.group(1) in vocabulary:
        return f"expression reads fact {match.group(1)!r}, which is not in its facts list"
    if match:
        return (
            f"expression reads {match.group(1)!r}, which is not a fact in {FACTS_FILE_NAME}: "
            f"{_first_line(message)}"
        )
    return f"invalid CEL expression: {message.strip()}"


def _first_line(message):
    return message.strip().splitlines()[0]
