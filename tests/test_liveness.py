"""One liveness rule on the database's clock, whatever the reader's clock says.

time-machine moves this process's clock (the web process's, for the dashboard,
/healthz and admin) but not PostgreSQL's, which is exactly the disagreement
these tests need: a reader that used its own clock would call the instance
dead when its clock runs ahead, and alive long after it died when it lags.
"""

from datetime import timedelta

import pytest
import time_machine
from django.db.models.functions import Now
from django.urls import reverse
from django.utils import timezone

from scanner_project.health import health_report
from schedules.admin.dashboard import dashboard_context
from schedules.instances import live_instances
from schedules.models import SchedulerInstance

# /healthz reads on its own connection in a thread: the rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

SKEW = timedelta(hours=1)


def _beat_now(instance_id: str) -> None:
    SchedulerInstance.objects.create(instance_id=instance_id, host="h", pid=1, started_at=timezone.now(),
                                     last_seen=Now())


def _every_reader(client) -> dict[str, list[str]]:
    admin_page = client.get(reverse("admin:schedules_schedulerinstance_changelist"))
    alive_in_admin = [i.instance_id for i in admin_page.context["cl"].result_list if i.is_live]
    return {
        "runtime": [i.instance_id for i in live_instances()],
        "dashboard": [i.instance_id for i in dashboard_context()["instances"]],
        "healthz": [i["instance_id"] for i in health_report()["scheduler"]["instances"]],
        "admin": alive_in_admin,
    }


@pytest.mark.parametrize("reader_clock", [SKEW, -SKEW], ids=["reader-ahead", "reader-behind"])
def test_every_reader_agrees_with_the_database_clock(admin_client, reader_clock, settings):
    settings.INSTANCE_STALE_SECONDS = 15
    _beat_now("fresh")
    SchedulerInstance.objects.create(instance_id="silent", host="h", pid=2, started_at=timezone.now(),
                                     last_seen=timezone.now() - timedelta(minutes=5))
    with time_machine.travel(timezone.now() + reader_clock, tick=True):
        readers = _every_reader(admin_client)
    assert readers == {name: ["fresh"] for name in readers}


def test_admin_list_shows_a_stopped_instance_as_not_alive(admin_client):
    _beat_now("gone")
    SchedulerInstance.objects.filter(instance_id="gone").update(stopped_at=Now())
    assert _every_reader(admin_client) == {"runtime": [], "dashboard": [], "healthz": [], "admin": []}


def test_a_first_heartbeat_is_written_with_the_database_clock():
    from schedules import instances

    with time_machine.travel(timezone.now() + SKEW, tick=True):
        instances.beat(instance_id="new", started_at=timezone.now(), jobs_loaded=0, running_now=0, status={})
    assert [i.instance_id for i in live_instances()] == ["new"]
