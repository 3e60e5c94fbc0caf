"""The audit trail is append-only and tamper-evident: every entry written, one
by one or in bulk, is chained by hash in id order, even with concurrent
writers, and ``verifyaudit`` names the first entry that was altered, removed
or inserted by raw SQL."""

import json
import threading
import uuid
from itertools import pairwise

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from alerts.models import AlertChannel
from audit import chain
from audit.models import AppendOnlyError, AuditChainHead, AuditEntry
from audit.verify import verify_chain
from schedules.models import Schedule

pytestmark = pytest.mark.django_db


def entries() -> list[AuditEntry]:
    return list(AuditEntry.objects.order_by("id"))


def sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def broken_at() -> tuple[int | None, str]:
    report = verify_chain()
    return report.broken_id, report.problem


@pytest.fixture
def five(make_schedule) -> list[AuditEntry]:
    for _ in range(5):
        make_schedule()
    assert verify_chain().intact
    return entries()


def test_every_entry_is_chained_including_bulk_writes(make_schedule):
    schedule = make_schedule()
    Schedule.objects.bulk_create([Schedule(domain_config_id=f"bulk-{n}", domain=f"bulk{n}.example.com",
                                           frequency="daily", time_config={"hour": 1, "minute": 0}) for n in range(3)])
    Schedule.objects.filter(domain_config_id__startswith="bulk-").update(enabled=False)
    AlertChannel.objects.bulk_create([AlertChannel(kind="email", target=f"o{n}@example.com") for n in range(2)])
    AuditEntry.objects.create(model="note", object_id="1", object_label="by hand", action="update",
                              actor_kind="python", changes={"big": [10**16, 0.5], "schedule": [str(schedule.pk), None]})
    written = entries()
    assert len(written) == 1 + 3 + 3 + 2 + 1
    assert written[0].prev_hash == chain.GENESIS
    assert all(e.prev_hash == before.hash for before, e in pairwise(written))
    assert all(e.hash == chain.entry_hash(e) for e in written)
    head = AuditChainHead.objects.get()
    assert (head.last_id, head.last_hash) == (written[-1].pk, written[-1].hash)
    call_command("verifyaudit")


def test_verifyaudit_passes_an_intact_chain(five, capsys):
    call_command("verifyaudit")
    assert f"Audit trail intact: 5 entries, head {five[-1].hash}." in capsys.readouterr().out


def test_an_altered_entry_is_named(five):
    sql("UPDATE audit_entries SET changes = %s::jsonb WHERE id = %s", [json.dumps({"domain": [None, "x"]}), five[2].pk])
    with pytest.raises(CommandError, match=f"entry #{five[2].pk} .* does not match its hash: it was altered") as error:
        call_command("verifyaudit")
    assert error.value.returncode == 1
    sql("UPDATE audit_entries SET actor = 'someone else' WHERE id = %s", [five[1].pk])
    assert broken_at()[0] == five[1].pk


def test_an_entry_removed_from_the_middle_is_found(five):
    sql("DELETE FROM audit_entries WHERE id = %s", [five[2].pk])
    broken_id, problem = broken_at()
    assert broken_id == five[3].pk and f"does not follow entry #{five[1].pk}" in problem


def test_entries_removed_from_either_end_are_found(five):
    sql("DELETE FROM audit_entries WHERE id = %s", [five[-1].pk])
    broken_id, problem = broken_at()
    assert broken_id == five[-1].pk and f"the last entry is #{five[-2].pk}: entries were removed" in problem
    sql("DELETE FROM audit_entries")
    assert "no entry is left" in broken_at()[1]


def test_the_oldest_entries_removed_are_found(five):
    sql("DELETE FROM audit_entries WHERE id = %s", [five[0].pk])
    broken_id, problem = broken_at()
    assert broken_id == five[1].pk and "is the oldest, but it does not follow the start of the chain" in problem


def _forged(after: AuditEntry, **fields) -> AuditEntry:
    forged = AuditEntry(model="schedule", object_id=after.object_id, object_label="forged", action="update",
                        actor_kind="user", actor="admin", changes={"enabled": [True, False]},
                        created_at=after.created_at, prev_hash=after.hash)
    forged.hash = chain.entry_hash(forged)
    for name, value in fields.items():
        setattr(forged, name, value)
    return forged


def _insert(entry: AuditEntry, *, id: int) -> None:
    sql("INSERT INTO audit_entries (id, model, object_id, object_label, action, actor_kind, actor, changes, "
        "created_at, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)",
        [id, entry.model, entry.object_id, entry.object_label, entry.action, entry.actor_kind, entry.actor,
         json.dumps(entry.changes), entry.created_at, entry.prev_hash, entry.hash])


def test_an_inserted_entry_is_found_even_with_a_correct_hash(make_schedule):
    make_schedule(), make_schedule()
    sql("SELECT setval(pg_get_serial_sequence('audit_entries', 'id'), "
        "(SELECT max(id) FROM audit_entries) + 10)")  # a gap, as rolled-back writes leave
    make_schedule()
    a, b, c = entries()
    _insert(_forged(b), id=b.pk + 5)  # between b and c, chained to b
    broken_id, problem = broken_at()
    assert broken_id == c.pk and f"does not follow entry #{b.pk + 5}" in problem
    sql("DELETE FROM audit_entries WHERE id = %s", [b.pk + 5])
    assert verify_chain().intact
    _insert(_forged(c, hash="0" * 64), id=c.pk + 1)  # appended without knowing how to hash
    assert broken_at()[0] == c.pk + 1
    sql("DELETE FROM audit_entries WHERE id = %s", [c.pk + 1])
    _insert(_forged(c), id=c.pk + 1)  # appended with a correct hash, but not through the chain head
    broken_id, problem = broken_at()
    assert broken_id == c.pk and "the chain head records entry" in problem


def test_entries_are_never_changed_or_deleted_through_the_orm(make_schedule):
    make_schedule()
    entry = AuditEntry.objects.get()
    entry.actor = "someone else"
    for attempt in (entry.save, entry.delete, AuditEntry.objects.all().delete,
                    lambda: AuditEntry.objects.update(actor="x"),
                    lambda: AuditEntry.objects.bulk_update([entry], fields=["actor"]),
                    lambda: AuditEntry.objects.bulk_create([AuditEntry(model="x", object_id="1")],
                                                           ignore_conflicts=True)):
        with pytest.raises(AppendOnlyError):
            attempt()
    assert AuditEntry.objects.get().actor == "" and verify_chain().intact


def test_the_admin_cannot_add_change_or_delete_entries(admin_client, make_schedule):
    make_schedule()
    entry = AuditEntry.objects.get()
    change = reverse("admin:audit_auditentry_change", args=[entry.pk])
    assert admin_client.post(change, {"actor": "x"}).status_code == 403
    assert admin_client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    listing = admin_client.get(reverse("admin:audit_auditentry_changelist"))
    assert b"delete_selected" not in listing.content
    admin_client.post(reverse("admin:audit_auditentry_changelist"),
                      {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert entry.hash.encode() in admin_client.get(change).content


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_produce_one_valid_chain(make_schedule):
    schedules = [make_schedule() for _ in range(4)]
    channels = [AlertChannel.objects.create(kind="email", target=f"w{n}@example.com") for n in range(4)]
    rounds, start, errors = 15, threading.Barrier(8), []

    def edit_schedule(schedule):
        for n in range(rounds):
            schedule.domain = f"r{n}-{schedule.domain_config_id}.example.com"
            schedule.save()

    def edit_channel(channel):
        for n in range(rounds):
            AlertChannel.objects.filter(pk=channel.pk).update(enabled=n % 2 == 1)

    def writer(work, target):
        start.wait()
        try:
            work(target)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(edit_schedule, s)) for s in schedules]
    threads += [threading.Thread(target=writer, args=(edit_channel, c)) for c in channels]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    written = entries()
    assert len(written) == 8 + 8 * rounds
    assert len({e.prev_hash for e in written}) == len(written)  # no two entries follow the same one
    report = verify_chain()
    assert report.intact, report.problem


@pytest.mark.django_db(transaction=True)
def test_the_migration_chains_the_entries_already_stored():
    executor = MigrationExecutor(connection)
    before, latest = [("audit", "0001_initial")], executor.loader.graph.leaf_nodes("audit")
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps.get_model("audit", "AuditEntry")
        ids = [uuid.uuid4() for _ in range(3)]
        for n, object_id in enumerate(ids):
            old.objects.create(model="schedule", object_id=object_id, object_label=f"s{n}", action="create",
                               actor_kind="python", changes={"domain": [None, f"s{n}.example.com"]})
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    finally:
        MigrationExecutor(connection).migrate(latest)
    stored = entries()
    assert [e.object_id for e in stored] == [str(pk) for pk in ids]
    assert verify_chain().intact and AuditChainHead.objects.get().last_id == stored[-1].pk
