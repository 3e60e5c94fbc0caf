"""The audit trail is kept apart from execution history: cleanuphistory and
the history's daily cleanup never delete entries. AUDIT_RETENTION_DAYS (off by
default) and ``cleanupaudit`` prune them, and the chain stays verifiable."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command, get_commands, load_command_class
from django.utils import timezone

from audit import pruning
from audit.models import AuditEntry
from audit.verify import verify_chain
from history.models import JobExecution
from schedules.runtime.config import RuntimeConfig
from schedules.runtime.housekeeping import chores
from tests.history_factories import make_execution

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def aged(make_schedule, time_machine):
    """Schedules created 100, 40 and 10 days ago and today (one audit entry each),
    with an execution 40 days old."""
    for days in (100, 40, 10, 0):
        time_machine.move_to(NOW - timedelta(days=days), tick=False)
        schedule = make_schedule()
    make_execution(schedule=schedule, status="success", ago=timedelta(days=40), now=NOW)
    time_machine.move_to(NOW, tick=False)
    assert AuditEntry.objects.count() == 4
    return schedule


def _help(name: str) -> str:
    return load_command_class(get_commands()[name], name).create_parser("manage.py", name).format_help()


def test_cleanuphistory_never_deletes_audit_entries(aged, capsys):
    call_command("cleanuphistory", "--days", "1", "--dry-run")
    call_command("cleanuphistory", "--days", "1")
    assert not JobExecution.objects.exists()
    assert AuditEntry.objects.count() == 4
    assert "Audit entries are kept" in capsys.readouterr().out
    assert "never deletes audit entries" in " ".join(_help("cleanuphistory").split())


def test_the_daily_history_cleanup_keeps_audit_entries(aged, settings):
    settings.HISTORY_RETENTION_DAYS = 1
    config = RuntimeConfig.from_settings(instance_id="host-a-1")
    [history_cleanup] = [c.task for c in chores(config, clock=timezone.now) if c.name == "history_cleanup"]
    history_cleanup()
    assert not JobExecution.objects.exists() and AuditEntry.objects.count() == 4


def test_audit_retention_is_off_by_default(aged, settings):
    assert settings.AUDIT_RETENTION_DAYS == 0
    config = RuntimeConfig.from_settings(instance_id="host-a-1")
    assert "audit_prune" not in [c.name for c in chores(config, clock=timezone.now)]
    assert pruning.prune_if_due(instance_id="host-a-1") is None
    assert AuditEntry.objects.count() == 4


def test_cleanupaudit_counts_then_prunes_and_the_chain_stays_verifiable(aged, capsys):
    call_command("cleanupaudit", "--days", "30", "--dry-run")
    assert "Would delete 2 audit entries older than 30 day(s)." in capsys.readouterr().out
    assert AuditEntry.objects.count() == 4
    call_command("cleanupaudit", "--days", "30")
    assert "Deleted 2 audit entries" in capsys.readouterr().out
    kept = list(AuditEntry.objects.order_by("id"))
    assert [e.action for e in kept] == ["create", "create", "prune"]
    prune = kept[-1]
    assert (prune.actor_kind, prune.actor, prune.changes["entries"]) == ("command", "cleanupaudit", [2, None])
    assert kept[0].prev_hash == pruning.through_hash(prune)
    call_command("verifyaudit")
    with pytest.raises(CommandError, match="--days: 0"):
        call_command("cleanupaudit", days=0)


def test_pruning_in_batches_and_again_later_keeps_the_chain(aged, make_schedule, time_machine):
    assert pruning.prune_old_entries(days=5, batch_size=2, dry_run=True) == 3
    assert pruning.prune_old_entries(days=5, batch_size=2) == 3
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["create", "prune", "prune"]
    assert verify_chain().intact
    make_schedule()
    time_machine.move_to(NOW + timedelta(days=10), tick=False)
    assert pruning.prune_old_entries(days=5) == 4  # today's entries and both earlier prune entries
    assert verify_chain().intact
    assert AuditEntry.objects.get().changes["entries"] == [4, None]


def test_pruning_stops_at_the_first_entry_it_keeps(make_schedule, time_machine):
    for days in (10, 0, 20):  # ids and clocks disagree: a host whose clock is behind
        time_machine.move_to(NOW - timedelta(days=days), tick=False)
        make_schedule()
    time_machine.move_to(NOW, tick=False)
    assert pruning.prune_old_entries(days=5) == 1  # what follows the newer entry stays, old or not
    assert AuditEntry.objects.count() == 3 and verify_chain().intact


def test_removing_entries_after_a_prune_is_still_found(aged):
    pruning.prune_old_entries(days=30)
    oldest = AuditEntry.objects.order_by("id").first()
    with pruning.chain.pruning():
        AuditEntry.objects.filter(pk=oldest.pk).delete()
    report = verify_chain()
    assert not report.intact and "does not follow the last entry the latest prune removed" in report.problem


def test_audit_retention_prunes_once_a_day_across_instances(aged, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    config = RuntimeConfig.from_settings(instance_id="host-a-1")
    [(interval, prune)] = [(c.interval, c.task) for c in chores(config, clock=timezone.now) if c.name == "audit_prune"]
    assert interval == 300.0
    prune()
    assert pruning.prune_if_due(instance_id="host-b-2") is None
    prune_entry = AuditEntry.objects.get(action="prune")
    assert (prune_entry.actor_kind, prune_entry.actor) == ("automatic", "AUDIT_RETENTION_DAYS=30 (host-a-1)")
    assert AuditEntry.objects.count() == 3 and verify_chain().intact
