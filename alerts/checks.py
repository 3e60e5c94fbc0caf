"""The watched conditions. Each check reads the current facts and claims the
transition they imply (alerts.transitions.claim); running one on every
instance at once is safe."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Max
from django.db.models.functions import Now

from alerts.config import alert_config
from alerts.models import AlertKind, AlertState, ScheduleAlertRule
from alerts.transitions import claim, ensure_states, firing_subjects
from history import scan_changes
from history.models import ExecutionStatus, JobExecution
from schedules.models import Schedule, SchedulerInstance

SCHEDULER = "scheduler"
API_SYNC = "api-sync"
QUEUE = "queue"
_OUTCOMES = (ExecutionStatus.SUCCESS, ExecutionStatus.FAILED)


# --- schedules failing -------------------------------------------------------
def check_schedule_streaks(*, finished_within: timedelta, instance_id: str = "") -> int:
    """Schedules whose runs finished within ``finished_within`` (by the database's clock): a failing alert
    when their last N runs all failed (N: the schedule's rule, else
    ALERT_AFTER_FAILURES), a recovery when a firing one's last run succeeded.
    Returns the number of alerts claimed."""
    recent = JobExecution.objects.filter(completed_at__gte=Now() - finished_within, status__in=_OUTCOMES,
                                         schedule_id__isnull=False)
    failed = {str(pk) for pk in recent.filter(status=ExecutionStatus.FAILED).values_list("schedule_id", flat=True)}
    succeeded = {str(pk) for pk in recent.filter(status=ExecutionStatus.SUCCESS).values_list("schedule_id", flat=True)}
    firing = firing_subjects(kind=AlertKind.SCHEDULE_FAILING, subjects=list(failed | succeeded))
    # Already firing and failing again: nothing changes; healthy and succeeding: same.
    to_check = (failed - firing) | (succeeded & firing)
    if not to_check:
        return 0
    rules = dict(ScheduleAlertRule.objects.filter(schedule_id__in=to_check).values_list("schedule_id", "after_failures"))
    names = dict(Schedule.objects.filter(schedule_id__in=to_check).values_list("schedule_id", "domain"))
    claimed = 0
    default_threshold = alert_config().after_failures
    for schedule_id in sorted(names, key=str):  # a deleted schedule is gone from names
        subject = str(schedule_id)
        threshold = rules.get(schedule_id, default_threshold)
        last = list(
            JobExecution.objects.filter(schedule_id=schedule_id, status__in=_OUTCOMES)
            .order_by("-started_at", "-execution_id").values("status", "error_message")[:threshold]
        )
        domain = names[schedule_id]
        if last and last[0]["status"] == ExecutionStatus.SUCCESS:
            alert = claim(kind=AlertKind.SCHEDULE_FAILING, subject=subject, firing=False, instance_id=instance_id,
                          title=f"Recovered: {domain} scans succeed again",
                          text=f"The scan of {domain} (schedule {subject}) succeeded after failing.",
                          details={"schedule_id": subject, "domain": domain})
        elif len(last) == threshold and all(row["status"] == ExecutionStatus.FAILED for row in last):
            alert = claim(kind=AlertKind.SCHEDULE_FAILING, subject=subject, firing=True, instance_id=instance_id,
                          title=f"Failing: {domain} failed {threshold} times in a row",
                          text=f"The last {threshold} scans of {domain} (schedule {subject}) failed. "
                               f"Last error: {last[0]['error_message'][:500]}",
                          details={"schedule_id": subject, "domain": domain, "failures": threshold,
                                   "last_error": last[0]["error_message"][:2000]})
        else:
            alert = None
        claimed += alert is not None
    return claimed


# --- a new cookie set before consent ------------------------------------------------
NAMED_COOKIES = 10  # in the title; the text and details name up to 100
_CHANGE_WORDS = {"new": "new", "moved_before_consent": "set after consent last time"}


def check_new_cookies_before_consent(*, finished_within: timedelta, instance_id: str = "") -> int:
    """Schedules with a successful scan finished within ``finished_within``:
    firing when the latest successful scan found a cookie set before consent
    that the previous scan did not set before consent (new, or moved from
    after consent); resolved when a later successful scan finds none. A
    schedule's first scan is its baseline and never fires. Returns the number
    of alerts claimed."""
    scanned = scan_changes.schedules_scanned_since(finished_after=Now() - finished_within)
    latest = scan_changes.latest_scan_changes(schedule_ids=scanned)
    if not latest:
        return 0
    firing = firing_subjects(kind=AlertKind.NEW_COOKIE_BEFORE_CONSENT, subjects=[str(pk) for pk in latest])
    claimed = 0
    for schedule_id, scan in sorted(latest.items(), key=lambda item: str(item[0])):
        subject, domain = str(schedule_id), scan["domain"]
        cookies = scan_changes.before_consent_news(scan["changes"])
        where = f"schedule {subject}, execution {scan['execution_id']}"
        if cookies and subject not in firing:
            listed = [{key: c.get(key) for key in ("name", "domain", "path", "third_party", "change")}
                      for c in cookies[:100]]
            names = list(dict.fromkeys(str(c["name"]) for c in cookies))
            shown = ", ".join(names[:NAMED_COOKIES]) + (
                f" and {len(names) - NAMED_COOKIES} more" if len(names) > NAMED_COOKIES else "")
            lines = "; ".join(f"{c['name']} ({c['domain']}, {_CHANGE_WORDS[c['change']]})" for c in listed)
            alert = claim(kind=AlertKind.NEW_COOKIE_BEFORE_CONSENT, subject=subject, firing=True,
                          instance_id=instance_id,
                          title=f"A new cookie is set before consent on {domain}: {shown}",
                          text=f"The latest scan of {domain} ({where}) found {len(cookies)} cookie(s) set before "
                               f"the visitor consents that the previous scan did not set before consent: {lines}",
                          details={"schedule_id": subject, "domain": domain, "execution_id": str(scan["execution_id"]),
                                   "since": scan["changes"].get("since"), "cookies": listed})
        elif not cookies and subject in firing:
            alert = claim(kind=AlertKind.NEW_COOKIE_BEFORE_CONSENT, subject=subject, firing=False,
                          instance_id=instance_id, title=f"No new cookie before consent on {domain}",
                          text=f"The latest scan of {domain} ({where}) found no new cookie set before consent.",
                          details={"schedule_id": subject, "domain": domain,
                                   "execution_id": str(scan["execution_id"])})
        else:
            alert = None
        claimed += alert is not None
    return claimed


# --- no live scheduler instance ------------------------------------------------
def check_scheduler_liveness(*, threshold_seconds: float | None = None, instance_id: str = "") -> bool | None:
    """Firing when no instance is live and the last one was seen more than the
    threshold ago (by the database's clock). Returns the state it claimed, or None."""
    threshold = alert_config().no_instance_seconds if threshold_seconds is None else threshold_seconds
    if SchedulerInstance.objects.live().exists():
        alert = claim(kind=AlertKind.NO_LIVE_INSTANCE, subject=SCHEDULER, firing=False, instance_id=instance_id,
                      title="Scheduler running again", text="A scheduler instance is live again.")
        return False if alert else None
    last_seen = SchedulerInstance.objects.aggregate(last=Max("last_seen"))["last"]
    quiet = SchedulerInstance.objects.filter(last_seen__gte=Now() - timedelta(seconds=threshold)).exists()
    if quiet:
        return None  # gone, but not for long enough yet
    seen = f"last seen {last_seen.isoformat()}" if last_seen else "none has ever run"
    alert = claim(kind=AlertKind.NO_LIVE_INSTANCE, subject=SCHEDULER, firing=True, instance_id=instance_id,
                  title=f"No scheduler running for over {threshold:.0f} s",
                  text=f"No runscheduler instance is live ({seen}); no scans are being started.",
                  details={"last_seen": last_seen.isoformat() if last_seen else None})
    return True if alert else None


# --- API sync failing -----------------------------------------------------------
def note_sync_result(result: dict | None, *, instance_id: str = "") -> None:
    """Count the periodic API sync's failures in a row (result from
    schedules.importer.apply.run_periodic_sync; None when another instance had the turn)."""
    if result is None:
        return
    ensure_states(kind=AlertKind.SYNC_FAILING, subjects=[API_SYNC])
    state = AlertState.objects.filter(kind=AlertKind.SYNC_FAILING, subject=API_SYNC)
    if "error" not in result:
        state.update(streak=0)
        claim(kind=AlertKind.SYNC_FAILING, subject=API_SYNC, firing=False, instance_id=instance_id,
              title="API sync works again", text="The periodic import from API_URL succeeded.")
        return
    with transaction.atomic():
        state.update(streak=F("streak") + 1)
        streak = state.values_list("streak", flat=True).get()
    threshold = alert_config().sync_after_failures
    if streak >= threshold:
        claim(kind=AlertKind.SYNC_FAILING, subject=API_SYNC, firing=True, instance_id=instance_id,
              title=f"API sync failed {streak} times in a row",
              text=f"The periodic import from API_URL failed {streak} times in a row. Last error: {result['error']}",
              details={"failures": streak, "last_error": result["error"]})


# --- queued slots waiting --------------------------------------------------------
def check_queue_age(*, age_seconds: float | None, threshold_seconds: float | None = None,
                    instance_id: str = "") -> bool | None:
    """Firing when the oldest queued slot has waited longer than the threshold;
    resolved when the queue has caught up. ``age_seconds`` None: queue empty.
    The age is the one /healthz and /metrics show: history.statistics.get_queue_backlog."""
    threshold = alert_config().queue_age_seconds if threshold_seconds is None else threshold_seconds
    behind = age_seconds is not None and age_seconds > threshold
    if behind:
        alert = claim(kind=AlertKind.QUEUE_BEHIND, subject=QUEUE, firing=True, instance_id=instance_id,
                      title=f"Queue behind: a slot has waited {age_seconds:.0f} s",
                      text=f"The oldest queued run has waited {age_seconds:.0f} s (threshold {threshold:.0f} s); "
                           "the workers are not keeping up or none is running.",
                      details={"age_seconds": age_seconds, "threshold_seconds": threshold})
    else:
        alert = claim(kind=AlertKind.QUEUE_BEHIND, subject=QUEUE, firing=False, instance_id=instance_id,
                      title="Queue caught up", text="No queued run is waiting longer than the threshold.")
    return behind if alert else None
