"""Every change an admin can make is in the audit trail: alert channels
(admin forms, bulk actions, QuerySet writes, the environment) and pauses (the
actions, the pause rows, the automatic end), never with a secret's value."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from alerts.channels import register_environment_channels
from alerts.models import AlertChannel
from audit import recording
from audit.models import AuditEntry
from pauses.models import SchedulePause
from pauses.services import close_expired, pause_schedules, resume_schedules

pytestmark = pytest.mark.django_db

ALERT_ONLY = ("view_alertchannel", "add_alertchannel", "change_alertchannel", "delete_alertchannel")
FROM_ENVIRONMENT = "https://hooks.example.com/alerts"


def trail(model: str, pk) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(model=model, object_id=str(pk)).order_by("id"))


def test_an_alert_only_user_retargeting_and_disabling_an_environment_channel_is_recorded(client, staff, settings):
    settings.ALERT_WEBHOOK_URLS = [FROM_ENVIRONMENT]
    register_environment_channels()
    channel = AlertChannel.objects.get(target=FROM_ENVIRONMENT)
    [created] = trail("alertchannel", channel.pk)
    assert (created.action, created.changes["from_environment"]) == ("create", [None, True])

    user = staff(*ALERT_ONLY)
    url = reverse("admin:alerts_alertchannel_change", args=[channel.pk])
    answer = client.post(url, {"kind": "webhook", "target": "https://collector.example.net/mine"})  # enabled: off
    assert answer.status_code == 302, answer.content.decode()[:2000]
    last = trail("alertchannel", channel.pk)[-1]
    assert (last.action, last.actor_kind, last.actor) == ("update", "user", user.username)
    assert last.changes == {"target": [FROM_ENVIRONMENT, "https://collector.example.net/mine"],
                            "enabled": [True, False]}
    assert last.object_label == "https://collector.example.net/mine (webhook)"
    assert "Audit trail" not in client.get(url).content.decode()  # the section needs the audit's view permission
    staff("view_alertchannel", "view_auditentry")
    page = client.get(url).content.decode()
    assert "Audit trail" in page and "collector.example.net/mine" in page


def test_creating_and_bulk_deleting_channels_in_admin_is_recorded(admin_client, admin_user):
    add = reverse("admin:alerts_alertchannel_add")
    assert admin_client.post(add, {"kind": "email", "target": "ops@example.com", "enabled": "on"}).status_code == 302
    channel = AlertChannel.objects.get(target="ops@example.com")
    admin_client.post(reverse("admin:alerts_alertchannel_changelist"),
                      {"action": "delete_selected", "_selected_action": [channel.pk], "post": "yes"})
    assert not AlertChannel.objects.exists()
    created, deleted = trail("alertchannel", channel.pk)
    assert (created.action, created.actor_kind, created.actor) == ("create", "user", admin_user.username)
    assert created.changes["target"] == [None, "ops@example.com"]
    assert (deleted.action, deleted.actor_kind, deleted.actor) == ("delete", "bulk_action", "admin: delete_selected")
    assert deleted.changes["target"] == ["ops@example.com", None]


def test_queryset_writes_to_channels_are_recorded():
    a = AlertChannel.objects.create(kind="webhook", target="https://a.example.com/hook")
    [b] = AlertChannel.objects.bulk_create([AlertChannel(kind="webhook", target="https://b.example.com/hook")])
    AlertChannel.objects.filter(pk__in=[a.pk, b.pk]).update(enabled=False)  # what a bulk disable does
    b.enabled, b.target = True, "https://c.example.com/hook"
    AlertChannel.objects.bulk_update([b], fields=["enabled", "target"])
    AlertChannel.objects.filter(pk=a.pk).delete()
    created, disabled, deleted = trail("alertchannel", a.pk)
    assert (created.action, disabled.changes, deleted.action) == ("create", {"enabled": [True, False]}, "delete")
    assert deleted.changes["target"] == ["https://a.example.com/hook", None]
    assert [(e.action, e.changes.get("enabled")) for e in trail("alertchannel", b.pk)] == [
        ("create", [None, True]), ("update", [True, False]), ("update", [False, True])]


def test_registering_the_environment_again_records_nothing_new(settings):
    settings.ALERT_EMAILS = ["ops@example.com"]
    register_environment_channels()
    register_environment_channels()
    assert AuditEntry.objects.filter(model="alertchannel", action="create").count() == 1


def test_secrets_are_recorded_as_changed_without_their_value():
    user = User.objects.create_user("someone", password="first-password-1")
    with recording.tracking(User, [user.pk]):
        User.objects.filter(pk=user.pk).update(password="pbkdf2$second-secret-hash", first_name="Ann")
    [entry] = trail("user", user.pk)
    assert entry.changes == {"password": ["(hidden)", "(changed)"], "first_name": ["", "Ann"]}
    assert recording.change("signing_secret", None, "whsec_abc") == [None, "(set)"]
    assert recording.change("api_token", "tok-1", None) == ["(hidden)", None]
    assert recording.change("scan_settings", {"headers": {"X-Api-Key": "k1"}}, {"headers": {"X-Api-Key": "k2"}}) == [
        {"headers": {"X-Api-Key": "(hidden)"}}, "(changed)"]


def test_user_info_in_a_channel_url_is_not_recorded():
    channel = AlertChannel.objects.create(kind="webhook", target="https://bot:hunter2@hooks.example.com/x")
    channel.target = "https://bot:other-pass@hooks.example.com/x"
    channel.save()
    text = repr([(e.object_label, e.changes) for e in trail("alertchannel", channel.pk)])
    assert "hunter2" not in text and "other-pass" not in text
    assert trail("alertchannel", channel.pk)[-1].changes["target"] == ["https://***@hooks.example.com/x", "(changed)"]


def test_pause_rows_and_the_pause_actions_are_recorded(admin_client, admin_user, make_schedule):
    schedule = make_schedule()
    changelist = reverse("admin:schedules_schedule_changelist")
    admin_client.post(changelist, {"action": "pause_selected", "_selected_action": [schedule.pk], "apply": "1",
                                   "reason": "owner asked"})
    admin_client.post(changelist, {"action": "resume_selected", "_selected_action": [schedule.pk]})
    pause = SchedulePause.objects.get()
    created, resumed = trail("schedulepause", pause.pk)
    assert (created.action, created.actor_kind) == ("create", "bulk_action")
    assert created.changes["reason"] == [None, "owner asked"] and created.changes["paused_by"] == [None, "admin"]
    assert created.object_label == f"pause of schedule {schedule.pk}"
    assert (resumed.action, resumed.actor, resumed.changes["resumed_by"]) == (
        "update", "admin: resume_selected", ["", "admin"])
    assert [e.action for e in trail("schedule", schedule.pk)] == ["create", "pause", "resume"]


def test_a_pause_ending_by_itself_is_recorded_once(make_schedule):
    schedule, now = make_schedule(), timezone.now()
    pause_schedules(schedule_ids=[schedule.pk], reason="window", paused_by="ops", resume_at=now + timedelta(hours=1))
    later = now + timedelta(hours=2)
    assert close_expired(now=later) == 1
    assert close_expired(now=later) == 0
    assert resume_schedules(schedule_ids=[schedule.pk], resumed_by="ops", now=later) == 0
    [*_, resumed] = trail("schedulepause", SchedulePause.objects.get().pk)
    assert (resumed.actor_kind, resumed.actor, resumed.changes["resumed_by"]) == (
        "automatic", "resume_at reached", ["", "automatic"])
    schedule_trail = trail("schedule", schedule.pk)
    assert [(e.action, e.actor_kind) for e in schedule_trail] == [
        ("create", "python"), ("pause", "python"), ("resume", "automatic")]
