"""The hash chain: object ids as text (alert channels and pause rows have
integer ids), prev_hash and hash on every entry, computed here for the
entries already stored (in id order), and the chain head row."""

import uuid

import django.db.models.functions.datetime
from django.db import migrations, models

BATCH = 2000


def chain_existing(apps, schema_editor):
    from audit.chain import GENESIS, HEAD_ID, entry_hash

    entries = apps.get_model("audit", "AuditEntry").objects
    previous, last_id = GENESIS, None
    while True:
        batch = list(entries.filter(id__gt=last_id or 0).order_by("id")[:BATCH])
        if not batch:
            break
        for entry in batch:
            if len(entry.object_id) == 32:  # SQLite stored UUIDs as 32 hex digits
                entry.object_id = str(uuid.UUID(entry.object_id))
            entry.prev_hash = previous
            entry.hash = previous = entry_hash(entry)
        entries.bulk_update(batch, ["object_id", "prev_hash", "hash"])
        last_id = batch[-1].pk
    apps.get_model("audit", "AuditChainHead").objects.create(id=HEAD_ID, last_id=last_id, last_hash=previous)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditChainHead',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ('last_id', models.BigIntegerField(null=True)),
                ('last_hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
                ('updated_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                'db_table': 'audit_chain_head',
            },
        ),
        migrations.AddField(
            model_name='auditentry',
            name='hash',
            field=models.CharField(default='', help_text="SHA-256 of this entry's content and prev_hash", max_length=64),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='prev_hash',
            field=models.CharField(default='', help_text='The hash of the entry before this one', max_length=64),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='action',
            field=models.CharField(choices=[('create', 'Create'), ('update', 'Update'), ('delete', 'Delete'), ('pause', 'Pause'), ('resume', 'Resume'), ('prune', 'Prune')], max_length=16),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='actor_kind',
            field=models.CharField(choices=[('user', 'user (admin form)'), ('bulk_action', 'bulk action'), ('api_sync', 'API sync'), ('python', 'Python API'), ('command', 'management command'), ('automatic', 'automatic (scheduler)')], max_length=16),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='model',
            field=models.CharField(help_text='schedule, scanprofile, alertchannel or schedulepause', max_length=32),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='object_id',
            field=models.CharField(db_index=True, max_length=64),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop, elidable=False),
    ]
