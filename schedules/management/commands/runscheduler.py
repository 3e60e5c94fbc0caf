"""Runs the scheduler until SIGTERM or SIGINT; any number may run at once."""

import logging
import os
import signal

from django.core.management.base import BaseCommand, CommandError

from scanner_project.arguments import at_least_one
from schedules.runtime import SchedulerService
from schedules.scans import ScannerUnavailable


class Command(BaseCommand):
    help = "Run scheduled scans (blocking). Start several, on several hosts, for high availability."

    def add_arguments(self, parser):
        parser.add_argument("--instance-id", help="defaults to SCHEDULER_INSTANCE_ID or host-pid")
        parser.add_argument("--max-workers", type=at_least_one, help="defaults to MAX_WORKERS")
        role = parser.add_mutually_exclusive_group()
        role.add_argument("--scans-only", action="store_true",
                          help="run queued scans only; fire no slots (add scan capacity on more hosts)")
        role.add_argument("--fire-only", action="store_true", help="fire slots into the queue only; run no scans")

    def handle(self, *args, instance_id=None, max_workers=None, scans_only=False, fire_only=False, **options):
        try:
            service = SchedulerService(instance_id=instance_id, max_workers=max_workers, fire=not scans_only,
                                       scan=not fire_only)
        except ScannerUnavailable as exc:
            raise CommandError(f"cannot scan on this host: {exc}") from None

        def stop(signum, frame):
            service.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            service.run()
        except BaseException:  # noqa: BLE001 - said here, then exit: never hang on joining scan threads
            logging.getLogger("schedules.runtime").exception("runscheduler stopped by an error")
            os._exit(1)
        # Scans past the grace period were marked interrupted; their threads
        # must not keep the process alive. A background loop that died exits 1.
        os._exit(service.exit_code)

