"""Evaluate every alert condition and deliver what is due, once.

Run it from cron on a host other than the schedulers: it is what notices
that no scheduler instance is running at all.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand

from alerts.channels import register_environment_channels
from alerts.delivery import dispatch_all
from alerts.loop import FIRST_LOOKBACK, evaluate
from scanner_project.arguments import at_least_one


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--lookback-minutes", type=at_least_one, default=int(FIRST_LOOKBACK.total_seconds() // 60),
                            help="How far back to look for finished runs (default %(default)s)")

    def handle(self, *args, lookback_minutes, **options):
        register_environment_channels()
        evaluate(lookback=timedelta(minutes=lookback_minutes), instance_id="checkalerts")
        sent = dispatch_all()
        self.stdout.write(f"{sent} alert message(s) sent")
