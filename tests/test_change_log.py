"""The exact change marker: every ORM write of a schedule or profile records
its id in schedule_changes in the same transaction, and the change feed applies
exactly those ids, deletes included."""

import threading
import uuid

import pytest
from django.db import transaction

from schedules.models import ScanProfile, Schedule, ScheduleChange
from schedules.runtime.bookkeeping import update_schedule_columns
from schedules.runtime.feed import ChangeFeed

pytestmark = pytest.mark.django_db


def recorded() -> list:
    rows = ScheduleChange.objects.order_by("id").values_list("schedule_id", "profile_id")
    return [sid or pid for sid, pid in rows]


def fresh_log():
    ScheduleChange.objects.all().delete()


def test_every_orm_write_path_records_its_rows(make_schedule):
    a, b = make_schedule(), make_schedule()
    assert recorded() == [a.pk, b.pk]

    fresh_log()
    a.time_config = {"hour": 4, "minute": 0}
    a.save()
    Schedule.objects.filter(pk=b.pk).update(enabled=False)
    assert recorded() == [a.pk, b.pk]

    fresh_log()
    made = Schedule.objects.bulk_create([Schedule(domain_config_id=f"bulk-{n}", domain=f"bulk{n}.example.com",
                                                  frequency="hourly", time_config={"minute": n}) for n in range(3)])
    for schedule in made:
        schedule.enabled = False
    Schedule.objects.bulk_update(made, ["enabled"])
    assert recorded() == [s.pk for s in made] * 2

    fresh_log()
    a_pk = a.pk
    a.delete()
    Schedule.objects.filter(pk__in=[s.pk for s in made]).delete()
    assert recorded() == [a_pk] + [s.pk for s in made]


def test_a_deleted_profile_records_itself_and_the_schedules_it_leaves(make_schedule):
    profile = ScanProfile.objects.create(name="p")
    using = make_schedule(profile=profile)
    fresh_log()
    profile_pk = profile.pk
    profile.delete()
    assert set(recorded()) == {profile_pk, using.pk}


def test_bookkeeping_writes_record_nothing(make_schedule):
    schedule = make_schedule()
    fresh_log()
    Schedule.objects.filter(pk=schedule.pk).update(next_run=None, last_status="success")
    update_schedule_columns(columns=("last_status",), rows=[("failed", schedule.pk)])
    schedule.save(update_fields=["next_run"])
    assert recorded() == []


def test_a_rolled_back_change_leaves_no_record(make_schedule):
    schedule = make_schedule()
    fresh_log()
    with pytest.raises(RuntimeError), transaction.atomic():
        Schedule.objects.filter(pk=schedule.pk).delete()
        raise RuntimeError("rollback")
    assert recorded() == []


class LoadedJobs:
    """What ChangeFeed sends its findings to (feed.JobTarget): the real one,
    job_table.JobTable, is tested end to end in test_live_changes."""

    def __init__(self, ids):
        self.specs = dict.fromkeys(ids)
        self.applied: list[tuple] = []

    def digests(self):
        return dict.fromkeys(self.specs, "")

    def held_shards(self):
        return None  # all

    def apply_spec(self, schedule_id, wanted, *, source):
        self.applied.append((schedule_id, "remove" if wanted is None else "load", source))
        return True


def feed_for(jobs):
    return ChangeFeed(jobs=jobs, redis_url="", stop=threading.Event())


def test_the_feed_applies_a_delete_hidden_by_a_create(make_schedule):
    doomed = make_schedule()
    service = LoadedJobs([doomed.pk])
    feed = feed_for(service)
    feed.begin()
    doomed_pk = doomed.pk
    with transaction.atomic():
        doomed.delete()
        born = make_schedule()
    feed.poll()
    assert set(service.applied) == {(doomed_pk, "remove", "change-log"), (born.pk, "load", "change-log")}
    service.applied.clear()
    feed.poll()
    assert service.applied == [], "each change is applied once"


def test_an_id_committed_after_a_higher_one_is_still_applied(make_schedule):
    """Ids are taken before commit: a slow transaction can make a lower id
    visible after a higher one was read."""
    early, late = make_schedule(), make_schedule()
    feed = feed_for(LoadedJobs([]))
    feed.begin()
    base = feed.highest
    ScheduleChange.objects.create(id=base + 2, schedule_id=late.pk)
    feed.poll()
    assert feed.jobs.applied == [(late.pk, "load", "change-log")]
    ScheduleChange.objects.create(id=base + 1, schedule_id=early.pk)  # the slow one commits
    feed.poll()
    assert feed.jobs.applied[-1] == (early.pk, "load", "change-log")
    assert len(feed.jobs.applied) == 2


def test_a_change_to_a_profile_reaches_its_schedules(make_schedule):
    profile = ScanProfile.objects.create(name="p")
    using, other = make_schedule(profile=profile), make_schedule()
    feed = feed_for(LoadedJobs([using.pk, other.pk]))
    feed.begin()
    ScanProfile.objects.filter(pk=profile.pk).update(max_pages=7)
    feed.poll()
    assert feed.jobs.applied == [(using.pk, "load", "change-log")]


def test_unknown_ids_in_the_log_are_removals():
    gone = uuid.uuid4()
    feed = feed_for(LoadedJobs([gone]))
    feed.begin()
    ScheduleChange.record(schedule_ids=[gone])
    feed.poll()
    assert feed.jobs.applied == [(gone, "remove", "change-log")]
