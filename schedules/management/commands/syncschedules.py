"""``python manage.py syncschedules``: one import from the upstream API.

Exit status: 0 every entry was imported, skipped or held back; 1 nothing was
imported (the API could not be read, answered in the wrong shape, or
--disable-missing would disable more than half without --force); 2 bad
arguments; 3 the valid entries were imported but at least one was rejected.
"""

import argparse
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from scanner_project.redaction import redact
from schedules.importer.apply import SyncError, sync_schedules_from_api
from schedules.importer.client import redact_url


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError(f"{redact_url(value)!r} is not an http:// or https:// URL")
    return value


EXIT_API_UNREADABLE = 1
EXIT_ENTRIES_REJECTED = 3


class Command(BaseCommand):
    help = "Import schedules from the upstream API (API_URL) once and print what changed."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Show what would change; write nothing.")
        parser.add_argument("--url", type=_http_url, help="Read this URL instead of API_URL.")
        parser.add_argument(
            "--disable-missing", action="store_true", help="Disable (never delete) schedules missing from the answer."
        )
        parser.add_argument("--force", action="store_true", help="Overwrite schedules edited by hand, too.")

    def handle(self, *args, **options):
        try:
            result = sync_schedules_from_api(
                url=options["url"],
                dry_run=options["dry_run"],
                disable_missing=options["disable_missing"],
                force=options["force"],
            )
        except SyncError as exc:
            source = "--url" if options["url"] else "API_URL"
            raise CommandError(f"API sync failed ({source}): {redact(str(exc))}", returncode=EXIT_API_UNREADABLE) from None
        prefix = "dry run, nothing written: would have " if result["dry_run"] else ""
        self.stdout.write(
            f"{prefix}created {result['created']}, updated {result['updated']}, skipped {result['skipped']}, "
            f"invalid {len(result['rejected'])}, held back {len(result['held_back'])}, "
            f"missing {len(result['missing'])}, disabled {len(result['disabled'])}"
        )
        sections = (
            ("changes", "Changes"),
            ("rejected", "Invalid entries"),
            ("skipped_reasons", "Skipped"),
            ("held_back", "Held back (edited by hand; use --force)"),
            ("missing", "Missing from the API's answer"),
        )
        for key, title in sections:
            if result[key]:
                self.stdout.write(f"{title}:")
                for line in result[key]:
                    self.stdout.write(f"  {line}")
        if result["rejected"]:
            raise CommandError(
                f"{len(result['rejected'])} entries were rejected (listed above); the valid ones were imported",
                returncode=EXIT_ENTRIES_REJECTED,
            )
