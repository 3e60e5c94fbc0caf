"""Every command in the README is real: manage.py commands exist and accept the
arguments shown, and every name the Python examples import exists.

What the commands do is tested elsewhere (scripts/start.sh in
test_start_script.py, scripts/test.sh is CI itself, each management command in
its own test module); this keeps the README from naming what is gone.
"""

import ast
import re
import shlex
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
# Commands of other programs, shown for operators; not run by the tests.
EXTERNAL = ("docker compose", "export ", "redis-cli", "systemctl", "cp ")


def shell_lines():
    for language, body in BLOCKS:
        if language == "bash":
            for line in body.splitlines():
                line = line.split(" #")[0].strip()
                if line and not line.startswith("#"):
                    yield line


def manage_commands():
    for line in shell_lines():
        words = shlex.split(line)
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words.pop(0)  # VAR=value prefixes
        if len(words) >= 2 and words[1] == "manage.py":
            yield line, words[2], words[3:]


def test_the_readme_starts_with_the_two_commands():
    first_block = BLOCKS[0][1].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["scripts/start.sh", "scripts/test.sh"]
    assert (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text().strip().endswith("exec scripts/test.sh")


@pytest.mark.parametrize("line", list(shell_lines()))
def test_every_shell_line_is_known(line):
    words = shlex.split(line)
    while words and re.match(r"^[A-Z_]+=", words[0]):
        words.pop(0)
    known = (line.startswith(EXTERNAL) or words[0] in {"scripts/start.sh", "scripts/test.sh"}
             or (len(words) > 1 and words[1] == "manage.py"))
    assert known, f"README line not covered by any test: {line}"


@pytest.mark.parametrize("line, name, arguments", list(manage_commands()))
def test_manage_py_commands_exist_and_accept_their_arguments(line, name, arguments):
    commands = get_commands()
    assert name in commands, f"{line}: no such command"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    parser.parse_args(arguments)


def test_python_examples_import_real_names():
    python = "\n".join(body for language, body in BLOCKS if language == "python")
    tree = ast.parse(python)
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert len(imports) >= 5
    for node in imports:
        module = __import__(node.module, fromlist=[alias.name for alias in node.names])
        for alias in node.names:
            assert hasattr(module, alias.name), f"README imports {node.module}.{alias.name}, which does not exist"


def test_python_example_calls_exist_on_the_objects():
    from history.job_history import get_job_history
    from schedules.repository import get_schedule_repository

    calls = set(re.findall(r"\b(?:repo|history)\.(\w+)\(", README))
    for name in calls:
        assert hasattr(get_schedule_repository(), name) or hasattr(get_job_history(), name), name
