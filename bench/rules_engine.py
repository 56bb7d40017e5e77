"""Measure CEL implementations for Python on one representative compliance rule.

For each library this script times compiling the rule and evaluating it
over an entity's facts, including the conversion of the facts into the
library's input. It also probes how the library handles a missing fact, a
fact of the wrong type, a syntax error and an undeclared name.

Two of the libraries install a top-level module named ``cel``, so run the
script once per library, each from its own virtual environment::

    python3.13 -m venv /tmp/bench-celpy
    /tmp/bench-celpy/bin/pip install cel-python==0.5.0
    /tmp/bench-celpy/bin/python bench/rules_engine.py

It measures every library that the interpreter can import and lists the
others as not installed. Each measurement stops after ``MAX_ITERATIONS``
runs or ``TIME_BUDGET_SECONDS``, whichever comes first. docs/rules.md
records the results.
"""

import importlib.metadata
import json
import os
import platform
import statistics
import time

MAX_ITERATIONS = 2000
TIME_BUDGET_SECONDS = 2.0
REPEATS = 5

RULE = (
    'owner != "" && credentials.rotation_days <= 90'
    ' && access.scopes.all(scope, scope != "*" && !scope.endsWith(":*"))'
    " && logging.enabled && logging.retention_days >= 365"
)
FACTS = {
    "owner": "Claims Operations",
    "credentials": {"rotation_days": 30},
    "access": {"scopes": ["claims_db.read", "policy_lookup", "case_router.assign"]},
    "logging": {"enabled": True, "retention_days": 400},
}
# The same facts as qualified names, the form typed declarations use.
FLAT_FACTS = {
    "owner": "Claims Operations",
    "credentials.rotation_days": 30,
    "access.scopes": ["claims_db.read", "policy_lookup", "case_router.assign"],
    "logging.enabled": True,
    "logging.retention_days": 400,
}
MISSING_FACT = {**FACTS, "credentials": {}}
WRONG_TYPE = {**FACTS, "credentials": {"rotation_days": "30"}}
SYNTAX_ERROR = 'owner != "" &&'
UNDECLARED = "credentials.rotation_days <= 90 && undeclared_fact"


def flatten(facts, prefix=""):
    """Return nested facts as ``{"a.b": value}`` with one entry per leaf."""
    flat = {}
    for key, value in facts.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


class CelPython:
    """cel-python (module ``celpy``): a pure Python interpreter built on lark."""

    name = "cel-python"
    mode = "nested maps"

    def __init__(self):
        import celpy

        self.celpy = celpy
        self.environment = celpy.Environment()

    def compile(self, source):
        return self.environment.program(self.environment.compile(source))

    def evaluate(self, program, facts):
        activation = {key: self.celpy.json_to_cel(value) for key, value in facts.items()}
        return bool(program.evaluate(activation))


class CommonExpressionLanguage:
    """common-expression-language (module ``cel``): bindings to the Rust ``cel`` crate."""

    name = "common-expression-language"
    mode = "nested maps"

    def __init__(self):
        import cel

        if not hasattr(cel, "compile"):
            raise ImportError("the installed 'cel' module is not common-expression-language")
        self.cel = cel

    def compile(self, source):
        return self.cel.compile(source)

    def evaluate(self, program, facts):
        return program.execute(facts)


class CelExprPythonNested:
    """cel-expr-python: bindings to the C++ implementation, each root declared ``dyn``."""

    name = "cel-expr-python"
    mode = "nested maps, roots declared dyn"

    def __init__(self):
        from cel_expr_python import cel

        roots = ["owner", "credentials", "access", "logging"]
        self.environment = cel.NewEnv(variables=dict.fromkeys(roots, cel.Type.DYN))

    def compile(self, source):
        return self.environment.compile(source)

    def evaluate(self, program, facts):
        value = program.eval(data=facts)
        result = value.value()
        if not isinstance(result, bool):
            raise ValueError(result)
        return result


class CelExprPythonTyped:
    """cel-expr-python with every fact declared as a typed, qualified variable."""

    name = "cel-expr-python"
    mode = "qualified names, typed"

    def __init__(self):
        from cel_expr_python import cel

        types = cel.Type
        self.environment = cel.NewEnv(
            variables={
                "owner": types.STRING,
                "credentials.rotation_days": types.INT,
                "access.scopes": types.List(types.STRING),
                "logging.enabled": types.BOOL,
                "logging.retention_days": types.INT,
            }
        )

    def compile(self, source):
        return self.environment.compile(source)

    def evaluate(self, program, facts):
        value = program.eval(data=flatten(facts))
        result = value.value()
        if not isinstance(result, bool):
            raise ValueError(result)
        return result


class CelBind:
    """cel-bind (module ``cel``): bindings to the C++ implementation without map types.

    Nested facts need a JSON schema per root, which the library turns into
    protobuf messages.
    """

    name = "cel-bind"
    mode = "JSON schema per root"

    def __init__(self):
        import cel

        if not hasattr(cel, "Interpreter"):
            raise ImportError("the installed 'cel' module is not cel-bind")
        pool = cel.DescriptorPool()
        schemas = {
            "credentials": {"rotation_days": {"type": "integer"}},
            "access": {"scopes": {"type": "array", "items": {"type": "string"}}},
            "logging": {"enabled": {"type": "boolean"}, "retention_days": {"type": "integer"}},
        }
        declarations = {"owner": cel.StringType()}
        for root, properties in schemas.items():
            schema = json.dumps({"type": "object", "properties": properties})
            declarations[root] = pool.add_json_schema(root.title(), schema)
        self.compiler = cel.Compiler(pool, declarations, None)
        self.interpreter = cel.Interpreter(pool, declarations, None)

    def compile(self, source):
        return self.interpreter.build_expression_plan(self.compiler.compile_to_checked_expr(source))

    def evaluate(self, program, facts):
        return self.interpreter.evaluate(program, facts)


CANDIDATES = [
    ("cel-python", CelPython),
    ("common-expression-language", CommonExpressionLanguage),
    ("cel-expr-python", CelExprPythonNested),
    ("cel-expr-python", CelExprPythonTyped),
    ("cel-bind", CelBind),
]


def per_call_microseconds(function):
    """Return the median over ``REPEATS`` batches of microseconds per call of ``function``.

    Each batch runs at most ``MAX_ITERATIONS`` calls and stops early once it
    has used its share of ``TIME_BUDGET_SECONDS``.
    """
    batch_budget = TIME_BUDGET_SECONDS / REPEATS
    samples = []
    for _ in range(REPEATS):
        calls = 0
        started = time.perf_counter()
        deadline = started + batch_budget
        while calls < MAX_ITERATIONS and time.perf_counter() < deadline:
            function()
            calls += 1
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


def probe(engine, source, facts):
    """Return how ``engine`` handles one case: its result, or the error it raised."""
    try:
        program = engine.compile(source)
    except Exception as error:  # the probe reports any failure
        return f"compile error ({type(error).__name__})"
    try:
        return f"result {engine.evaluate(program, facts)!r}"
    except Exception as error:  # the probe reports any failure
        return f"evaluation error ({type(error).__name__}: {str(error)[:70]})"


def measure(engine):
    """Return the timings and the behaviour probes of one engine."""
    program = engine.compile(RULE)
    if engine.evaluate(program, FACTS) is not True:
        raise AssertionError(f"{engine.name} did not pass the representative facts")
    return {
        "compile_us": per_call_microseconds(lambda: engine.compile(RULE)),
        "evaluate_us": per_call_microseconds(lambda: engine.evaluate(program, FACTS)),
        "missing fact": probe(engine, RULE, MISSING_FACT),
        "wrong type": probe(engine, RULE, WRONG_TYPE),
        "syntax error": probe(engine, SYNTAX_ERROR, FACTS),
        "undeclared name": probe(engine, UNDECLARED, FACTS),
    }


def cpu_model():
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def library_version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def main():
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}")
    print(f"rule: {RULE}")
    for distribution, engine_class in CANDIDATES:
        version = library_version(distribution)
        if version is None:
            print(f"\n{distribution}: not installed")
            continue
        try:
            engine = engine_class()
        except ImportError as error:
            print(f"\n{distribution} {version}: not importable here ({error})")
            continue
        results = measure(engine)
        print(f"\n{engine.name} {version} ({engine.mode})")
        print(f"  compile  {results.pop('compile_us'):10.1f} us per rule")
        print(f"  evaluate {results.pop('evaluate_us'):10.1f} us per rule")
        for case, outcome in results.items():
            print(f"  {case}: {outcome}")


if __name__ == "__main__":
    main()
