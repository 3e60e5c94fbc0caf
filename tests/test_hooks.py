"""schedules.hooks is what connects the apps built on schedules to it: a paused
slot is skipped, the chores run, sync failures alert and the admin has its
pause and re-run actions because pauses, reruns and alerts registered them, and
schedules imports none of those apps."""

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import alerts.hooks
import pauses.hooks
import reruns.hooks
from alerts.checks import note_sync_result
from alerts.models import Alert, AlertKind
from history.models import JobExecution
from pauses.services import pause_schedules
from schedules import hooks
from schedules.importer.apply import PERIODIC_LOCK_KEY, run_periodic_sync
from schedules.runtime.config import RuntimeConfig
from schedules.runtime.housekeeping import chores
from schedules.runtime.specs import load_spec
from schedules.runtime.take import see_pauses
from tests.hook_registry import registry_without
from tests.test_execution import SLOT, context, ok_runner, run_slot

pytestmark = pytest.mark.django_db

SCHEDULES = Path(__file__).resolve().parent.parent / "schedules"


def test_no_module_of_schedules_imports_alerts_pauses_or_reruns_even_inside_a_function():
    found = []
    for path in sorted(SCHEDULES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            found += [f"{path.relative_to(SCHEDULES.parent)}:{node.lineno} {name}" for name in names
                      if re.match(r"(alerts|pauses|reruns)(\.|$)", name)]
    assert found == []


def test_a_paused_slot_is_skipped_because_pauses_registered_its_source(make_schedule):
    held, free = make_schedule(), make_schedule()
    pause_schedules(schedule_ids=[held.pk, free.pk], reason="DNS move", paused_by="ops", now=SLOT - timedelta(hours=1))
    assert hooks.pause_source() is pauses.hooks.SOURCE
    assert run_slot(context(ok_runner), load_spec(held.pk), SLOT) == "skipped"
    assert JobExecution.objects.get(schedule_id=held.pk).error_message == "paused by ops: DNS move"

    with registry_without(hooks.PAUSE_SOURCES, pauses.hooks.SOURCE):
        assert hooks.pause_source() is hooks.NO_PAUSES
        ctx = context(ok_runner)
        with CaptureQueriesContext(connection) as queries:
            see_pauses(ctx)
            assert run_slot(ctx, load_spec(free.pk), SLOT) == "success"  # the pause is there; nobody asks it
        assert not any("schedule_pauses" in q["sql"] for q in queries.captured_queries)
    assert hooks.pause_source() is pauses.hooks.SOURCE  # as before


def test_the_chores_of_a_runscheduler_are_those_the_apps_registered():
    config = RuntimeConfig.from_settings(instance_id="host-a-1")
    found = {chore.name: chore for chore in chores(config, clock=timezone.now)}
    assert {"pauses", "reruns", "alerts"} <= set(found)
    assert found["alerts"].own_thread and found["alerts"].interval == config.alert_check_interval
    assert not found["pauses"].own_thread and found["reruns"].interval == 1.0
    with registry_without(hooks.CHORES, pauses.hooks.expired_pauses_chore, alerts.hooks.alert_chore):
        left = {chore.name for chore in chores(config, clock=timezone.now)}
    assert "pauses" not in left and "alerts" not in left and "reruns" in left


def test_registering_again_changes_nothing():
    """AppConfig.ready() may run twice (test runners, some servers)."""
    before = (hooks.CHORES(), hooks.PAUSE_SOURCES(), hooks.SYNC_LISTENERS(), hooks.SCHEDULE_ADMIN())
    pauses.hooks.register()
    reruns.hooks.register()
    alerts.hooks.register()
    assert (hooks.CHORES(), hooks.PAUSE_SOURCES(), hooks.SYNC_LISTENERS(), hooks.SCHEDULE_ADMIN()) == before
    with pytest.raises(RuntimeError, match="a pause source is registered already"):
        hooks.register_pause_source(hooks.NO_PAUSES)


def test_a_failed_periodic_sync_alerts_because_alerts_listens(settings, sync_settings):
    settings.ALERT_SYNC_AFTER_FAILURES = 1
    with registry_without(hooks.SYNC_LISTENERS, note_sync_result):
        assert "error" in run_periodic_sync(instance_id="a", enabled=True, interval=60)  # API_URL is not set
    assert not Alert.objects.exists()
    cache.delete(PERIODIC_LOCK_KEY)  # the next interval
    # What runscheduler calls (with its own switch and interval).
    assert "error" in run_periodic_sync(instance_id="a", enabled=True, interval=60)
    alert = Alert.objects.get()
    assert (alert.kind, alert.title) == (AlertKind.SYNC_FAILING, "API sync failed 1 times in a row")


def test_a_failing_sync_listener_is_logged_and_the_others_still_hear(caplog):
    heard = []

    def broken(result, *, instance_id):
        raise ValueError("listener bug")

    def listening(result, *, instance_id):
        heard.append((result, instance_id))

    with registry_without(hooks.SYNC_LISTENERS, note_sync_result):  # and as before afterwards
        hooks.register_sync_listener(broken)
        hooks.register_sync_listener(listening)
        hooks.notify_sync_result({"created": 1}, instance_id="b")
    assert hooks.SYNC_LISTENERS() == (note_sync_result,)
    assert heard == [({"created": 1}, "b")]
    assert "listener bug" in caplog.text


def _action_names(admin_client) -> list[str]:
    page = admin_client.get(reverse("admin:schedules_schedule_changelist")).content.decode()
    return re.findall(r'<option value="(\w+)"', page.split('name="action"', 1)[1].split("</select>", 1)[0])


def test_the_pause_and_rerun_actions_and_the_pause_section_come_from_their_apps(admin_client, make_schedule):
    schedule = make_schedule()
    pause_schedules(schedule_ids=[schedule.pk], reason="owner asked", paused_by="ops")
    page = reverse("admin:schedules_schedule_change", args=[schedule.pk])
    own = ["delete_selected", "enable_schedules", "disable_schedules", "run_now"]
    assert _action_names(admin_client) == [*own, "pause_selected", "resume_selected", "rerun_missed"]
    body = admin_client.get(page).content.decode()
    assert "pause-record" in body and "owner asked" in body
    # The section sits right after the first fieldset, as it always did.
    assert body.index("pause-record") < body.index("field-frequency")

    with registry_without(hooks.SCHEDULE_ADMIN, pauses.hooks.ADMIN, reruns.hooks.ADMIN):
        assert _action_names(admin_client) == own
        assert "pause-record" not in admin_client.get(page).content.decode()
    assert _action_names(admin_client)[-3:] == ["pause_selected", "resume_selected", "rerun_missed"]


def test_every_registered_admin_section_needs_a_view_permission():
    sections = [section for ext in hooks.schedule_admin_extensions() for section in ext.sections]
    assert sections  # the pause record
    assert all(re.fullmatch(r"\w+\.view_\w+", section.permission) for section in sections)
