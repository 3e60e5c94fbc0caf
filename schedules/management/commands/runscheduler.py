"""Runs the scheduler until SIGTERM or SIGINT; any number may run at once."""

import os
import signal
from datetime import timedelta

from django.core.management.base import BaseCommand

from schedules.runtime import SchedulerService


class Command(BaseCommand):
    help = "Run scheduled scans (blocking). Start several, on several hosts, for high availability."

    def add_arguments(self, parser):
        parser.add_argument("--instance-id", help="defaults to SCHEDULER_INSTANCE_ID or host-pid")
        parser.add_argument("--max-workers", type=_positive_int, help="defaults to MAX_WORKERS")

    def handle(self, *args, instance_id=None, max_workers=None, **options):
        _apply_test_clock_offset()
        service = SchedulerService(instance_id=instance_id, max_workers=max_workers)

        def stop(signum, frame):
            service.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        service.run()
        # Scans past the grace period were marked interrupted; their threads
        # must not keep the process alive.
        os._exit(0)


def _positive_int(value: str) -> int:
    import argparse

    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-workers: {value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"--max-workers: {value!r} must be at least 1")
    return number


def _apply_test_clock_offset() -> None:
    """SCHEDULER_TEST_CLOCK_OFFSET (seconds) skews this process's clock, for
    the multi-instance tests only; time-machine is a test dependency."""
    offset = os.environ.get("SCHEDULER_TEST_CLOCK_OFFSET")
    if offset:
        import time_machine

        time_machine.travel(timedelta(seconds=float(offset)), tick=True).start()
