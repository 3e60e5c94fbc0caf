"""Runs the scheduler until SIGTERM or SIGINT; any number may run at once."""

import os
import signal

from django.core.management.base import BaseCommand

from scanner_project.arguments import at_least_one
from schedules.runtime import SchedulerService


class Command(BaseCommand):
    help = "Run scheduled scans (blocking). Start several, on several hosts, for high availability."

    def add_arguments(self, parser):
        parser.add_argument("--instance-id", help="defaults to SCHEDULER_INSTANCE_ID or host-pid")
        parser.add_argument("--max-workers", type=at_least_one, help="defaults to MAX_WORKERS")

    def handle(self, *args, instance_id=None, max_workers=None, **options):
        service = SchedulerService(instance_id=instance_id, max_workers=max_workers)

        def stop(signum, frame):
            service.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        service.run()
        # Scans past the grace period were marked interrupted; their threads
        # must not keep the process alive.
        os._exit(0)

