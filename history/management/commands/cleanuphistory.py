from django.core.management.base import BaseCommand, CommandError

from history.cleanup import cleanup_old_executions


class Command(BaseCommand):
    help = "Delete execution history older than --days, in batches (like clearsessions)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, required=True, help="Keep executions started in the last N days.")
        parser.add_argument("--batch-size", type=int, default=5000, help="Rows deleted per transaction.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *, days, batch_size, dry_run, **options):
        try:
            count = cleanup_old_executions(days=days, batch_size=batch_size, dry_run=dry_run)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {count} execution(s) older than {days} day(s).")
