"""Run a management command with this process's clock moved by
SCHEDULER_TEST_CLOCK_OFFSET seconds: ``python -m tests.clock_offset runscheduler``.

For the multi-instance tests and the fault harness, which need an instance
whose clock is off. time-machine is a test dependency, so the hook lives here
and production code has none.
"""

import os
import sys
from datetime import timedelta

import time_machine


def main() -> None:
    offset = float(os.environ.get("SCHEDULER_TEST_CLOCK_OFFSET") or 0)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scanner_project.settings")
    from django.core.management import execute_from_command_line

    with time_machine.travel(timedelta(seconds=offset), tick=True):
        execute_from_command_line(["manage.py", *sys.argv[1:]])


if __name__ == "__main__":
    main()
