from django.db import migrations, models


def guess_origin(apps, schema_editor):
    # Rows from before this field: the import clears edited_manually on every
    # write, so rows without the mark most likely came from the API. A hand
    # edit of an imported row counts as the operator's from now on.
    Schedule = apps.get_model("schedules", "Schedule")
    Schedule.objects.filter(edited_manually=False).update(from_api=True)


class Migration(migrations.Migration):
    dependencies = [
        ("schedules", "0002_schedule_changes"),
    ]

    operations = [
        migrations.AddField(
            model_name="schedule",
            name="from_api",
            field=models.BooleanField(
                default=False,
                help_text="Written by the API import; only such schedules can be missing from its answer",
            ),
        ),
        migrations.RunPython(guess_origin, migrations.RunPython.noop),
    ]
