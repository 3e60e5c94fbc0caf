# A once schedule must now run before 9000-01-01 (schedules.timing.triggers.ONCE_LATEST).
# Rows saved before that bound can never run, and a next_run near the year 9999
# made the schedule list, its page and the dashboard fail in zones east of UTC:
# their next_run is cleared (their page then says why the time is invalid).

from datetime import datetime, timezone

from django.db import migrations

LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)


def clear_unshowable_next_runs(apps, schema_editor):
    Schedule = apps.get_model("schedules", "Schedule")
    Schedule.objects.filter(frequency="once", next_run__gte=LATEST).update(next_run=None)


class Migration(migrations.Migration):

    dependencies = [
        ('schedules', '0004_schedule_spread_minutes'),
    ]

    operations = [
        migrations.RunPython(clear_unshowable_next_runs, migrations.RunPython.noop, elidable=True),
    ]
