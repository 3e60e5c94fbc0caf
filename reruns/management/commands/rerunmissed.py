"""Queue the missed slots of chosen schedules over a period to run again (once each)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from reruns.services import missed_slots, queue_missed_slots
from schedules.models import Schedule


def _moment(value: str):
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"{value!r} is not a date and time such as 2026-11-20T00:00")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("domain_config_ids", nargs="*", help="Schedules by domain_config_id (or use --all)")
        parser.add_argument("--all", action="store_true", help="Every schedule")
        parser.add_argument("--since", required=True, help="From this time on (ISO 8601; TIME_ZONE if no offset)")
        parser.add_argument("--until", default="", help="Up to this time, exclusive (default: now)")
        parser.add_argument("--dry-run", action="store_true", help="Only count the missed slots")

    def handle(self, *args, domain_config_ids, all, since, until, dry_run, **options):
        if bool(domain_config_ids) == all:
            raise CommandError("name schedules by domain_config_id, or pass --all (not both)")
        schedules = Schedule.objects.all() if all else Schedule.objects.filter(domain_config_id__in=domain_config_ids)
        unknown = sorted(set(domain_config_ids) - set(schedules.values_list("domain_config_id", flat=True)))
        if unknown:
            raise CommandError(f"no schedule with domain_config_id {', '.join(map(repr, unknown))}")
        ids = list(schedules.values_list("pk", flat=True))
        start, end = _moment(since), _moment(until) if until else timezone.now()
        if dry_run:
            self.stdout.write(f"Would queue up to {missed_slots(schedule_ids=ids, since=start, until=end).count()} "
                              "missed slot(s).")
            return
        try:
            result = queue_missed_slots(schedule_ids=ids, since=start, until=end, requested_by="rerunmissed command")
        except ValidationError as exc:
            raise CommandError(exc.messages[0].replace("until:", "--until:").replace("since:", "--since:")) from None
        self.stdout.write(f"Queued {result.queued} missed slot(s); {result.already_queued} were queued before.")
