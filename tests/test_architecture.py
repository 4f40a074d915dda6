"""The package's shape holds: capability folders, one-way imports, the solver behind model/."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "flux_opt"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """flux_opt modules (and third-party roots) imported by a file; lazy imports inside functions
    are skipped when `top_level_only` (they cannot make an import cycle at load time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _graph(top_level_only: bool = True) -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in _imports(p, top_level_only) if i in modules and i != m} for m, p in modules.items()}


def test_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


# The floors of the package, lowest first (README « Architecture »). A unit is a package, or a part of
# one named on its own when it sits on another floor (the most specific name wins). A module may
# import from its own floor or any floor below, never from one above — imports made inside
# functions included.
FLOORS = (
    ("flux_opt", "errors", "vocabulary", "phases"),  # the package's version, French errors, word lists, timing
    ("input", "rpls.columns"),  # read and validate: the one load stage's reader; the RPLS code tables
    ("assiette",),  # flux C = A − B, targets, carry-over
    ("model",),  # the LinearProgram, the rule registry, the families, the solver (only here)
    ("plan",),  # the Result tables, reading a plan folder back, the plan's simulated year
    ("explanation", "conformity", "stock"),  # what the plan means, checked; the stock conversion
    ("pipeline",),  # the named stages every command goes through
    ("year", "negotiation", "scale", "rpls", "calibration"),  # workflows that call the pipeline
    ("report",),  # files and pages for people and machines, the outputs stage
    ("negotiation.live", "scale.batch", "year.orienter", "calibration.write"),  # workflows that write through the report
    ("cli", "__main__"),  # parse, call one function, print
)


def _unit(module: str) -> str:
    """The most specific unit of FLOORS a module belongs to."""
    parts = module.split(".")[1:] or ["flux_opt"]
    units = {u for floor in FLOORS for u in floor}
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in units:
            return ".".join(parts[:n])
    raise AssertionError(f"{module} is on no floor of FLOORS")


def _floor(unit: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if unit in floor)


def test_imports_point_down_the_floors_even_inside_functions():
    upward = []
    for module, imported in _graph(top_level_only=False).items():
        here = _unit(module)
        for target in imported:
            there = _unit(target)
            if _floor(there) > _floor(here):
                upward.append(f"{module} ({here}, floor {_floor(here)}) imports {target} ({there}, floor {_floor(there)})")
    assert not upward, "\n".join(sorted(upward))


def test_the_floors_name_every_package_once():
    units = [u for floor in FLOORS for u in floor]
    assert len(units) == len(set(units))
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(units), packages - set(units)
    for module in _graph():
        _unit(module)


def test_no_import_cycle_between_units_even_inside_functions():
    """Units import each other one way only, counting lazy imports (they hide cycles)."""
    edges = {}
    for module, imported in _graph(top_level_only=False).items():
        for target in imported:
            a, b = _unit(module), _unit(target)
            if a != b:
                edges.setdefault(a, set()).add(b)
    both = sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, ()))
    assert not both, both


def test_the_pipeline_computes_and_the_report_writes():
    imported = _imports(PACKAGE / "pipeline.py", top_level_only=False)
    assert not {i for i in imported if i.startswith(("flux_opt.report", "flux_opt.year", "flux_opt.negotiation",
                                                      "flux_opt.scale", "flux_opt.cli"))}


def test_the_floor_check_sees_an_import_hidden_in_a_function(tmp_path):
    """The checker reads nested imports: an upward import inside a function is found."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from flux_opt.report.outputs import write_run\n", encoding="utf-8")
    assert "flux_opt.report.outputs" in _imports(source, top_level_only=False)
    assert "flux_opt.report.outputs" not in _imports(source, top_level_only=True)
    assert _floor(_unit("flux_opt.report.outputs")) > _floor(_unit("flux_opt.pipeline"))


def test_an_import_inside_a_function_says_why_outside_the_command_line():
    """Imports belong at the top of a module; one made inside a function (a heavy or optional package,
    a Unix-only module) carries a `# lazy: <reason>` comment. cli/ imports lazily by rule (its docstring)."""
    silent = []
    for path in PACKAGE.rglob("*.py"):
        if PACKAGE / "cli" in path.parents:
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for function in ast.walk(ast.parse(text)):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and "# lazy:" not in lines[node.lineno - 1]:
                    silent.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not silent, silent


def test_package_inits_hold_only_a_docstring():
    for init in PACKAGE.rglob("__init__.py"):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        if init.parent == PACKAGE:  # flux_opt/__init__ also carries the version
            body = [n for n in body if not (isinstance(n, ast.Assign) and n.targets[0].id == "__version__")]
        assert len(body) == 1 and isinstance(body[0], ast.Expr), init


def test_only_the_model_package_talks_to_a_solver():
    for path in PACKAGE.rglob("*.py"):
        if PACKAGE / "model" in path.parents:
            continue
        solvers = {i for i in _imports(path, top_level_only=False) if i.split(".")[0] in ("highspy", "pyomo")}
        assert not solvers, (path, solvers)


def test_capability_folders_leave_few_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top


def test_every_command_enters_by_the_pipelines_load_stage():
    """`load_instance` is called by the pipeline's load stage only: every command gets the consistency
    checks, the targets check (or the lissage's targets) and one read."""
    callers = set()
    for path in PACKAGE.rglob("*.py"):
        if PACKAGE / "input" in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "load_instance":
                callers.add(str(path.relative_to(PACKAGE)))
    assert callers == {"pipeline.py"}, callers


def test_one_result_builder_and_one_way_out_of_the_solver():
    """A plan's result is built in one place (pipeline.plan_result, for a run and every re-plan), and
    every solve of a plan becomes a Solution in one place (model.solve.solution_of)."""
    def callers(name: str) -> set[str]:
        found = set()
        for path in PACKAGE.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == name:
                    found.add(str(path.relative_to(PACKAGE)))
        return found

    assert callers("make_result") == {"pipeline.py"}
    assert callers("solution_of") <= {"model/solve.py", "model/reusable.py"}
