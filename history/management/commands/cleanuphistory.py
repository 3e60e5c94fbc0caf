from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from history.cleanup import cleanup_old_executions
from scanner_project.arguments import at_least_one


class Command(BaseCommand):
    help = "Delete execution history older than --days, in batches (like clearsessions)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=at_least_one, required=True,
                            help="Keep executions started in the last N days (N >= 1).")
        parser.add_argument("--batch-size", type=at_least_one, default=5000, help="Rows deleted per transaction.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *, days, batch_size, dry_run, **options):
        try:
            count = cleanup_old_executions(days=days, batch_size=batch_size, dry_run=dry_run)
        except ValueError as exc:
            # Options passed to call_command() as keywords skip the parser's checks.
            name, _, reason = str(exc).partition(": ")
            raise CommandError(f"--{name.replace('_', '-')}: {reason}") from None
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {count} execution(s) older than {days} day(s).")
        if not dry_run and apps.is_installed("audit"):
            from audit.cleanup import cleanup_old_entries

            entries = cleanup_old_entries(days=days, now=timezone.now())
            self.stdout.write(f"Deleted {entries} audit entr{'y' if entries == 1 else 'ies'} older than {days} day(s).")
