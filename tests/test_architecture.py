"""The layering rules of issue 20 as tests: which package may import which,
the runtime's steps in one direction, settings read by config builders only.

The import rules read the source (the AST of every file, every import at any
depth, under TYPE_CHECKING and inside functions too, and import_module() of a
constant name), so an import hidden from the interpreter still counts. The
last test imports every module on its own (tests/import_alone.py).
"""

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("scanner_project", "schedules", "history", "alerts", "pauses", "reruns", "audit")

# The runtime's path of a slot, in order (schedules/runtime/<step>.py). A step
# may import the steps after it, never one before it.
RUNTIME_STEPS = ("fire", "claim", "queue", "take", "lock", "run", "finish")
# Runtime modules above the steps, which wire them together and so may import
# any of them. Every other runtime module (context, config, specs, locks,
# bookkeeping, loops, feed, job_table, ... as they come) is a shared helper
# and imports no step at all.
RUNTIME_ORCHESTRATION = ("__init__", "service", "startup", "housekeeping")

# The only modules of schedules/runtime and schedules/scans that read
# django.conf.settings: each builds its package's config object once.
CONFIG_BUILDERS = ("schedules/runtime/config.py", "schedules/scans/config.py")


@dataclass(frozen=True)
class Imported:
    module: str  # the full dotted name, relative imports resolved
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[Imported]:
    """Every module ``path`` imports, wherever the import statement stands.

    ``from a.b import c`` yields a.b and a.b.c (c may be a submodule); a
    relative import is resolved against the file's package.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Imported(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append(Imported(module, node.lineno))
            found += [Imported(f"{module}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            found.append(Imported(node.args[0].value, node.lineno))
    return found


def _is_dynamic_import(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return (name in ("import_module", "__import__") and bool(call.args)
            and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str))


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def python_files(*folders: str) -> list[Path]:
    files = sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {folders}: the test would check nothing"
    return files


def violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    """One line per import statement of a module within ``forbidden``."""
    found: dict[tuple[Path, int], str] = {}
    for path in files:
        for imported in imports_of(path):
            if any(is_within(imported.module, package) for package in forbidden):
                # The shortest name (the module, not a name imported from it).
                found.setdefault((path, imported.line), imported.module)
    return [f"{path.relative_to(ROOT)}:{line} imports {module}" for (path, line), module in sorted(found.items())]


def test_schedules_imports_no_module_of_alerts_pauses_or_reruns():
    # They build on schedules (a rule per schedule, a pause of schedules, a
    # rerun of a schedule's slots); schedules reaches them through hooks.
    found = violations(python_files("schedules"), ("alerts", "pauses", "reruns"))
    assert not found, "schedules/ imports apps that build on it:\n" + "\n".join(found)


def test_history_never_imports_schedules():
    found = violations(python_files("history"), ("schedules",))
    assert not found, "history/ imports schedules:\n" + "\n".join(found)


def runtime_modules() -> dict[str, Path]:
    return {path.stem: path for path in python_files("schedules/runtime")}


def runtime_imports(path: Path) -> set[str]:
    """The schedules.runtime modules ``path`` imports, by short name."""
    prefix = "schedules.runtime."
    return {imported.module.removeprefix(prefix).split(".")[0]
            for imported in imports_of(path) if imported.module.startswith(prefix)}


def test_a_runtime_step_imports_no_earlier_step():
    modules = runtime_modules()
    steps = [step for step in RUNTIME_STEPS if step in modules]
    assert len(steps) >= 2, f"too few of the steps {RUNTIME_STEPS} exist to have an order: {sorted(modules)}"
    found = [f"{step} imports {earlier}, which comes before it"
             for position, step in enumerate(steps)
             for earlier in sorted(runtime_imports(modules[step]) & set(steps[:position]))]
    assert not found, f"the chain is {' -> '.join(steps)}:\n" + "\n".join(found)


def test_the_runtime_helpers_import_no_step():
    modules = runtime_modules()
    helpers = sorted(set(modules) - set(RUNTIME_STEPS) - set(RUNTIME_ORCHESTRATION))
    assert helpers, "no shared runtime helper found: the test would check nothing"
    found = [f"{helper} imports the step {step}"
             for helper in helpers for step in sorted(runtime_imports(modules[helper]) & set(RUNTIME_STEPS))]
    assert not found, (f"shared helpers ({', '.join(helpers)}) import no step "
                       f"(steps: {', '.join(RUNTIME_STEPS)}):\n" + "\n".join(found))


def settings_reads(path: Path) -> list[int]:
    """Lines of ``path`` whose code reads ``settings.<name>`` (what grep finds,
    less comments and strings; f-string expressions included), names
    ``django.conf.settings``, or imports it (a getattr(settings, ...) needs that)."""
    lines = {imported.line for imported in imports_of(path) if imported.module == "django.conf.settings"}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        # settings.X, not self.settings.X or scan_settings.X (not Django's).
        if isinstance(node.value, ast.Name) and node.value.id == "settings":
            lines.add(node.lineno)
        elif node.attr == "settings" and ast.unparse(node.value) == "django.conf":
            lines.add(node.lineno)
    return sorted(lines)


def test_settings_are_read_in_runtime_and_scans_only_by_the_config_builders():
    found = [f"{path.relative_to(ROOT)}:{line}: {path.read_text().splitlines()[line - 1].strip()}"
             for path in python_files("schedules/runtime", "schedules/scans")
             if str(path.relative_to(ROOT)) not in CONFIG_BUILDERS
             for line in settings_reads(path)]
    assert not found, ("django.conf.settings is read outside the config builders "
                       f"({', '.join(CONFIG_BUILDERS)}):\n" + "\n".join(found))


def project_modules() -> list[str]:
    return sorted(module_name(path) for path in python_files(*PROJECT_PACKAGES))


def import_alone(mode: str, modules: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "scanner_project.settings"}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "import_alone.py"), mode, *modules],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout, f"import_alone.py {mode} failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout)


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    """Each module of the project is imported first thing in a process of its own.

    Why this way: a subprocess per module (about 170, each paying interpreter
    start and django.setup()) takes minutes on two cores, and re-importing in
    one process with sys.modules emptied is not fresh (Django's registry and
    the models stay). So one process sets Django up and forks a child per
    module: the child starts with exactly the modules the parent had loaded
    at the fork point, and imports the one module (tests/import_alone.py).

    Two fork points, because django.setup() itself loads half the project:
    - after django.setup(): for every module setup does not load;
    - after the models are loaded and before any ready() hook: for the modules
      that setup loads only through ready() (admin autodiscovery loads the
      admin, which loads the runtime), so each can be the first of them.
    What the models modules import (settings, the models, what they import)
    is loaded by setup in its fixed order and checked only by that order.

    Python runs a package's __init__ before any of its submodules, so a
    package whose __init__ imports its submodules fixes their order whatever
    is imported first: schedules/runtime/__init__.py imports the service and
    with it every step, so a circle inside the runtime shows here only once
    that __init__ stops doing so. The AST tests above find it regardless.
    """
    modules = project_modules()
    after_setup = import_alone("after-setup", modules)
    loaded_by_setup = [name for name, outcome in after_setup["results"].items() if outcome == "loaded"]
    before_ready = import_alone("before-ready", loaded_by_setup)
    results = {**after_setup["results"], **before_ready["results"]}
    failed = {name: outcome for name, outcome in results.items() if outcome not in ("ok", "loaded")}
    assert not failed, "modules that fail to import on their own:\n" + "\n\n".join(
        f"{name}:\n{outcome[-1500:]}" for name, outcome in sorted(failed.items()))
    # A guard on the method: most modules must really have been imported alone.
    imported_alone = sum(outcome == "ok" for outcome in results.values())
    assert imported_alone > len(modules) // 2, f"only {imported_alone} of {len(modules)} modules imported alone"
