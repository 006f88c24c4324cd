"""The architecture, enforced from the source alone (``ast``: nothing of the package is imported).

Every module imports only "down": errors/io/config -> backbones, data -> training (the shared fine-tuning
core), runs (the run folder) -> image, text (the task recipes) -> evaluation, reporting, export, serving,
tracking (readers of the run folder) -> api -> cli. These tests hold the rules that keep it so (and that
every import still finds its module after a move); each failure lists every offender with its file and
line, so one run shows all the work left.

The import graph counts every import a module can execute: imports inside functions included (a lazy
import still ties the modules together), ``importlib.import_module("shoulders...")`` included, only
``if TYPE_CHECKING:`` blocks left out (they never run). It is at least as strict as
``shared/tools/import_cycles.py``: it has every edge that tool draws, plus an edge to an enclosing
package when a module takes a name (not a submodule) from it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "shoulders"
MAX_PARAMETERS = 7
MAX_LINES = 60

READERS = ("shoulders.export", "shoulders.reporting", "shoulders.serving", "shoulders.evaluation", "shoulders.tracking", "shoulders.predicting")
RECIPES_AND_LOADERS = (
    "shoulders.image",
    "shoulders.training.recipe",
    "shoulders.text.recipe",
    "shoulders.text.data",
    "shoulders.data.dataset",
    "shoulders.data.digits",
)
LOADER_NAMES = frozenset({"prepare", "load_digits", "load_labelled_folder", "load_data"})
TRAINING = "shoulders.training"
TASKS = ("shoulders.image", "shoulders.text")


@dataclass(frozen=True)
class Module:
    name: str  # dotted; a package's __init__ is the package's name
    file: str  # relative to src/, for messages
    tree: ast.Module
    is_package: bool


@dataclass(frozen=True)
class Import:
    """One module the importer executes by one import statement (or ``import_module`` call)."""

    importer: str
    target: str  # the dotted name as written, resolved to its absolute form
    module: str | None  # the package module whose code this runs (None: outside the package)
    origin: str | None  # for a name taken from a module: the module that defines it (re-exports followed)
    name: str | None  # the name taken by ``from X import name`` (None for a whole module)
    line: int
    file: str

    def where(self) -> str:
        taken = f"from {self.target} import {self.name}" if self.name else f"import {self.target}"
        return f"{self.file}:{self.line}: {taken}"


def load_package(source: Path = SOURCE, package: str = PACKAGE) -> dict[str, Module]:
    files = {str(path.relative_to(source)): path.read_text(encoding="utf-8") for path in sorted((source / package).rglob("*.py"))}
    return parse_modules(files)


def parse_modules(files: dict[str, str]) -> dict[str, Module]:
    """``{"pkg/sub/mod.py": source}`` -> modules by dotted name (the tests below also feed it made-up packages)."""
    modules = {}
    for file, text in files.items():
        parts = list(Path(file).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, file, ast.parse(text, filename=file), is_package)
    return modules


def executed_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:`` (their ``else`` still runs)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.orelse:
                yield statement
                yield from executed_nodes(statement)
            continue
        yield child
        yield from executed_nodes(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def resolve(name: str, modules: dict[str, Module]) -> str | None:
    """The package module whose code ``import name`` runs last: ``name`` or its closest enclosing module."""
    if not (name == PACKAGE or name.startswith(PACKAGE + ".")):
        return None
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _absolute(module: Module, level: int, name: str | None) -> str:
    """The absolute name of a relative ``from ...name import``."""
    if not level:
        return name or ""
    base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def reexports(modules: dict[str, Module]) -> dict[str, dict[str, tuple[str, str]]]:
    """Per module, the names it takes at top level from another package module: name -> (module, name)."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for module in modules.values():
        table = found.setdefault(module.name, {})
        for statement in module.tree.body:
            if isinstance(statement, ast.ImportFrom):
                source = _absolute(module, statement.level, statement.module)
                for alias in statement.names:
                    table[alias.asname or alias.name] = (source, alias.name)
    return found


def origin_of(source: str, name: str, modules: dict[str, Module], exported: dict) -> str | None:
    """The module that defines ``source.name``: a submodule, or the end of the chain of re-exports."""
    for _ in range(20):  # a chain of re-exports is short; a cycle of them must not hang the test
        if f"{source}.{name}" in modules:
            return f"{source}.{name}"
        if source not in modules or name not in exported.get(source, {}):
            return resolve(source, modules)
        source, name = exported[source][name]
    return resolve(source, modules)


def imports_of(module: Module, modules: dict[str, Module], exported: dict) -> list[Import]:
    """Every import ``module`` can execute (module level or inside functions), resolved."""
    found = []

    def add(target: str, node: ast.AST, name: str | None = None) -> None:
        origin = origin_of(target, name, modules, exported) if name else None
        found.append(Import(module.name, target, resolve(target, modules), origin, name, node.lineno, module.file))

    for node in executed_nodes(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node.level, node.module)
            for alias in node.names:
                add(source, node, alias.name)
        elif _is_import_module_call(node):
            add(node.args[0].value, node)
    return found


def _is_import_module_call(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return False
    return _called_name(node) in ("import_module", "__import__") and isinstance(node.args[0].value, str)


def edges_of(item: Import, modules: dict[str, Module]) -> set[str]:
    """The package modules an import makes ``item.importer`` depend on.

    ``from P import m`` (m a submodule) depends on m and on P's ``__init__``; when P encloses the
    importer, P is already being imported (Python runs a package before its modules), so only m counts.
    ``from P import name`` depends on P, enclosing or not: the name exists only once P has run.
    """
    importer = item.importer
    encloses = lambda module: importer.startswith(module + ".")  # noqa: E731
    edges = set()
    if item.module and not encloses(item.module):
        edges.add(item.module)
    if item.name is not None:
        taken = f"{item.target}.{item.name}"
        if taken in modules:
            edges.add(taken)
        elif item.target in modules:  # (a missing module is `unresolved_imports`' finding, not an edge)
            edges.add(item.target)
    edges.discard(importer)
    return edges


def import_graph(modules: dict[str, Module]) -> dict[str, dict[str, list[Import]]]:
    """importer -> imported module -> the statements that draw that edge."""
    exported = reexports(modules)
    graph: dict[str, dict[str, list[Import]]] = {name: {} for name in modules}
    for module in modules.values():
        for item in imports_of(module, modules, exported):
            for target in edges_of(item, modules):
                graph[module.name].setdefault(target, []).append(item)
    return graph


def strongly_connected(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """Tarjan's components with more than one module: each is a set of modules importing each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components, key=lambda component: (-len(component), component))


def shortest_cycle(graph: dict[str, dict[str, list[Import]]], component: list[str]) -> list[str]:
    """One shortest loop through the component's first module, for a readable headline."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for successor in sorted(graph[node]):
            if successor == start:
                return paths[node] + [start]
            if successor in members and successor not in paths:
                paths[successor] = paths[node] + [successor]
                queue.append(successor)
    return component


def describe_cycles(graph: dict[str, dict[str, list[Import]]]) -> list[str]:
    lines = []
    for component in strongly_connected(graph):
        lines.append(f"cycle of {len(component)} modules: {' -> '.join(shortest_cycle(graph, component))}")
        for importer in component:
            for target in sorted(set(graph[importer]) & set(component)):
                for item in graph[importer][target]:
                    lines.append(f"    {item.where()}   ({importer} -> {target})")
    return lines


def within(name: str | None, prefixes: tuple[str, ...]) -> bool:
    return name is not None and any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def forbidden_imports(modules: dict[str, Module], importers: tuple[str, ...], banned: tuple[str, ...], names: frozenset = frozenset()) -> list[str]:
    """``file:line: statement`` for every import by a module under ``importers`` of a module under
    ``banned`` (as written, as resolved, or as the origin of a re-exported name) or of one of ``names``."""
    exported = reexports(modules)
    offenders = []
    for module in modules.values():
        if not within(module.name, importers):
            continue
        for item in imports_of(module, modules, exported):
            reached = (item.target, f"{item.target}.{item.name}" if item.name else None, item.module, item.origin)
            if any(within(name, banned) for name in reached) or item.name in names:
                offenders.append(item.where())
    return offenders


def bound_names(module: Module) -> set[str] | None:
    """The names ``module`` defines at top level (None when it has ``__getattr__`` or a star import)."""
    names: set[str] = set()
    pending = list(module.tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names.update(alias.asname or alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            targets += [item.optional_vars for item in getattr(node, "items", [])]
            names.update(name.id for target in targets if target is not None for name in ast.walk(target) if isinstance(name, ast.Name))
        if isinstance(node, (ast.If, ast.Try, ast.For, ast.With)):  # their blocks run at import time too
            pending += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            pending += [statement for handler in getattr(node, "handlers", []) for statement in handler.body]
    return None if "__getattr__" in names else names


def is_namespace(name: str, modules: dict[str, Module]) -> bool:
    """A folder of modules without ``__init__.py``: importable, defines no names of its own."""
    return any(known.startswith(name + ".") for known in modules)


def unresolved_imports(modules: dict[str, Module]) -> list[str]:
    """Imports of a package module, or of a name from one, that does not exist (left behind by a move)."""
    exported = reexports(modules)
    offenders = []
    for module in modules.values():
        for item in imports_of(module, modules, exported):
            if item.module is None:
                continue
            if item.target not in modules and not is_namespace(item.target, modules):
                offenders.append(f"{item.where()}: no module {item.target}")
            elif item.name and f"{item.target}.{item.name}" not in modules:
                names = bound_names(modules[item.target]) if item.target in modules else set()
                if names is not None and item.name not in names:
                    offenders.append(f"{item.where()}: {item.target} defines no {item.name}")
    return offenders


def functions(modules: dict[str, Module]) -> Iterator[tuple[Module, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield module, node


def parameter_count(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Parameters a caller can pass: ``self``/``cls`` not counted, ``*args`` and ``**kwargs`` one each."""
    arguments = function.args
    positional = arguments.posonlyargs + arguments.args
    count = len(positional) + len(arguments.kwonlyargs) + bool(arguments.vararg) + bool(arguments.kwarg)
    return count - bool(positional and positional[0].arg in ("self", "cls"))


def cli_commands(module: Module) -> set[str]:
    """Functions a ``cli/*_commands.py`` module registers with typer: decorated ``@app.command(...)`` /
    ``@app.callback(...)``, passed to ``app.command("name")(function)`` (wrapped or not, e.g.
    ``user_errors(function)``) or to ``add_command(app, "name", function)``. Their parameters are the
    command's options, one each, so the parameter limit does not apply to them."""
    if not (module.name.startswith(f"{PACKAGE}.cli.") and module.name.endswith("_commands")):
        return set()
    registered = set()
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(map(_is_registration, node.decorator_list)):
            registered.add(node.name)
        elif isinstance(node, ast.Call) and (_is_registration(node.func) or _called_name(node) == "add_command"):
            registered.update(name.id for argument in node.args for name in ast.walk(argument) if isinstance(name, ast.Name))
    return registered


def _is_registration(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("command", "callback")


def _called_name(call: ast.Call) -> str:
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def too_many_parameters(modules: dict[str, Module]) -> list[str]:
    offenders = []
    exempt = {(module.name, name) for module in modules.values() for name in cli_commands(module)}
    for module, function in functions(modules):
        count = parameter_count(function)
        if count > MAX_PARAMETERS and (module.name, function.name) not in exempt:
            offenders.append(f"{module.file}:{function.lineno}: {function.name}() takes {count} parameters")
    return offenders


def too_long(modules: dict[str, Module]) -> list[str]:
    offenders = []
    for module, function in functions(modules):
        lines = function.end_lineno - function.lineno + 1  # lineno is the `def` line: decorators excluded
        if lines > MAX_LINES:
            offenders.append(f"{module.file}:{function.lineno}: {function.name}() is {lines} lines")
    return offenders


def report(offenders: list[str], rule: str) -> str:
    return f"{len(offenders)} offender(s) of: {rule}\n" + "\n".join(offenders)


MODULES = load_package()


def test_the_package_is_found():
    assert {"shoulders", "shoulders.cli.main", "shoulders.io"} <= set(MODULES)


def test_no_import_cycle_between_modules():
    cycles = describe_cycles(import_graph(MODULES))
    assert not cycles, report(cycles, "no import cycle (function-level imports included)")


def test_every_package_import_resolves():
    offenders = unresolved_imports(MODULES)
    assert not offenders, report(offenders, "every import of a shoulders module or name finds it")


def test_run_folder_readers_import_no_recipe_or_data_loader():
    offenders = forbidden_imports(MODULES, READERS, RECIPES_AND_LOADERS, LOADER_NAMES)
    rule = f"{', '.join(READERS)} read the run folder: no import of {', '.join(RECIPES_AND_LOADERS)} or {sorted(LOADER_NAMES)}"
    assert not offenders, report(offenders, rule)


def test_training_core_imports_no_task():
    offenders = forbidden_imports(MODULES, (TRAINING,), TASKS)
    assert not offenders, report(offenders, f"{TRAINING} is shared by the tasks: no import of {', '.join(TASKS)}")


def test_task_recipes_are_siblings():
    for task in TASKS:
        others = tuple(other for other in TASKS if other != task)
        offenders = forbidden_imports(MODULES, (task,), others)
        assert not offenders, report(offenders, f"{task} is a task recipe: no import of another task ({', '.join(others)})")


def test_functions_take_at_most_seven_parameters():
    offenders = too_many_parameters(MODULES)
    assert not offenders, report(offenders, f"at most {MAX_PARAMETERS} parameters (typer commands excepted)")


def test_functions_are_at_most_sixty_lines():
    offenders = too_long(MODULES)
    assert not offenders, report(offenders, f"at most {MAX_LINES} lines from `def` to the last line")


# The checker itself, on made-up packages: each rule must see what it claims to see.


def graph_of(files: dict[str, str]) -> dict[str, dict[str, list[Import]]]:
    return import_graph(parse_modules(files))


def test_checker_sees_imports_inside_functions_and_relative_ones():
    graph = graph_of({
        "shoulders/__init__.py": "",
        "shoulders/low.py": "def late():\n    from shoulders import high\n",
        "shoulders/high.py": "from . import low\n",
    })
    assert strongly_connected(graph) == [["shoulders.high", "shoulders.low"]]
    assert "shoulders/low.py:2: from shoulders import high" in "\n".join(describe_cycles(graph))


def test_checker_ignores_type_checking_imports_and_resolves_submodules():
    graph = graph_of({
        "shoulders/__init__.py": "",
        "shoulders/pkg/__init__.py": "from shoulders.pkg.mod import thing\n",
        "shoulders/pkg/mod.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from shoulders.user import User\nthing = 1\n",
        "shoulders/user.py": "from shoulders.pkg import mod\nimport importlib\nimportlib.import_module('shoulders.late')\n",
        "shoulders/late.py": "",
    })
    assert strongly_connected(graph) == []
    assert set(graph["shoulders.user"]) == {"shoulders.pkg", "shoulders.pkg.mod", "shoulders.late"}
    assert set(graph["shoulders.pkg.mod"]) == set()


def test_checker_sees_a_name_taken_from_the_enclosing_package():
    graph = graph_of({
        "shoulders/__init__.py": "",
        "shoulders/pkg/__init__.py": "from shoulders.pkg.a import A\n",
        "shoulders/pkg/a.py": "from shoulders.pkg import b\n",  # a submodule: fine
        "shoulders/pkg/b.py": "from shoulders.pkg import A\n",  # needs pkg finished: a real cycle
    })
    assert strongly_connected(graph) == [["shoulders.pkg", "shoulders.pkg.a", "shoulders.pkg.b"]]


def test_checker_follows_reexports_to_forbidden_modules():
    modules = parse_modules({
        "shoulders/__init__.py": "",
        "shoulders/data/__init__.py": "from shoulders.data.dataset import PreparedData\nfrom shoulders.data.images import load_image\n",
        "shoulders/data/dataset.py": "",
        "shoulders/data/images.py": "",
        "shoulders/export/run.py": "from shoulders.data import load_image\ndef f():\n    from shoulders.data import PreparedData\n    from x import prepare\n",
    })
    offenders = forbidden_imports(modules, READERS, RECIPES_AND_LOADERS, LOADER_NAMES)
    assert offenders == ["shoulders/export/run.py:3: from shoulders.data import PreparedData", "shoulders/export/run.py:4: from x import prepare"]


def test_checker_finds_imports_left_behind_by_a_move():
    modules = parse_modules({
        "shoulders/__init__.py": "def __getattr__(name): ...\n",
        "shoulders/space/mod.py": "",
        "shoulders/a.py": "try:\n    from b import kept\nexcept ImportError:\n    kept = None\nX: int = 1\n",
        "shoulders/user.py": (
            "import shoulders.gone\nfrom shoulders import a, anything\nfrom shoulders.a import X, kept, missing\n"
            "from shoulders.gone import thing\nfrom shoulders.space import mod, other\n"
        ),
    })
    assert unresolved_imports(modules) == [
        "shoulders/user.py:1: import shoulders.gone: no module shoulders.gone",
        "shoulders/user.py:3: from shoulders.a import missing: shoulders.a defines no missing",
        "shoulders/user.py:4: from shoulders.gone import thing: no module shoulders.gone",
        "shoulders/user.py:5: from shoulders.space import other: shoulders.space defines no other",
    ]


def test_checker_counts_parameters_and_exempts_only_registered_commands():
    modules = parse_modules({
        "shoulders/__init__.py": "class A:\n    def method(self, a, b, c, d, e, f, g): ...\n    def wide(self, a, b, c, d, e, f, *rest, **options): ...\n",
        "shoulders/cli/__init__.py": "",
        "shoulders/cli/x_commands.py": (
            "def register(app):\n    app.command('x')(command)\n    add_command(app, 'y', other)\n"
            "    app.callback()(user_errors(wrapped))\n"
            "def command(a, b, c, d, e, f, g, h): ...\n"
            "def other(a, b, c, d, e, f, g, h): ...\n"
            "def wrapped(a, b, c, d, e, f, g, h): ...\n"
            "@sub.callback(invoke_without_command=True)\ndef group(a, b, c, d, e, f, g, h): ...\n"
            "def helper(a, b, c, d, e, f, g, h): ...\n"
        ),
    })
    assert too_many_parameters(modules) == [
        "shoulders/__init__.py:3: wide() takes 8 parameters",
        "shoulders/cli/x_commands.py:10: helper() takes 8 parameters",
    ]
