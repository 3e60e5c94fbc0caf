"""argparse types shared by the management commands: errors name the value;
and the shape of the two retention commands (cleanuphistory, cleanupaudit)."""

import argparse

from django.core.management.base import BaseCommand, CommandError


def at_least_one(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} must be at least 1")
    return number


class RetentionCommand(BaseCommand):
    """``--days N [--batch-size B] [--dry-run]``: delete what is older, or count it."""

    kept = "rows"  # what --days keeps, as in "Keep <kept> in the last N days"
    after = ""  # said after the count

    def add_arguments(self, parser):
        parser.add_argument("--days", type=at_least_one, required=True,
                            help=f"Keep {self.kept} in the last N days (N >= 1).")
        parser.add_argument("--batch-size", type=at_least_one, default=5000, help="Rows deleted per transaction.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def delete(self, *, days: int, batch_size: int, dry_run: bool) -> int:
        raise NotImplementedError

    def counted(self, count: int) -> str:
        raise NotImplementedError

    def handle(self, *, days, batch_size, dry_run, **options):
        try:
            count = self.delete(days=days, batch_size=batch_size, dry_run=dry_run)
        except ValueError as exc:
            # Options passed to call_command() as keywords skip the parser's checks.
            name, _, reason = str(exc).partition(": ")
            raise CommandError(f"--{name.replace('_', '-')}: {reason}") from None
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {self.counted(count)} older than {days} day(s).{self.after}")
