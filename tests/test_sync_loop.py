"""The periodic API import runs on its own thread, never on the scheduler's main loop."""

import logging
import threading
import time

import pytest

from schedules.importer.periodic import PeriodicSyncThread
from schedules.models import SchedulerInstance
from schedules.runtime import SchedulerService
from tests.api_server import trickle_headers


def wait_for(condition, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


def test_a_pass_that_raises_does_not_end_the_thread(caplog):
    calls = []

    def sync(*, instance_id):
        calls.append(instance_id)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return {"created": 0}

    stop = threading.Event()
    with caplog.at_level(logging.ERROR, logger="schedules.importer.periodic"):
        loop = PeriodicSyncThread(instance_id="a", interval=0.01, stop=stop, sync=sync).start()
        try:
            wait_for(lambda: len(calls) >= 3, 5, "the thread stopped after the failed pass")
        finally:
            stop.set()
            loop.thread.join(5)
    assert calls[:3] == ["a", "a", "a"]
    assert "the database went away" in caplog.text
    assert not loop.thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_heartbeats_continue_while_the_api_trickles_its_answer(api_server, settings):
    settings.ENABLE_API_SYNC = True
    settings.API_URL = api_server.serve("/trickle", trickle_headers)
    settings.REQUEST_TIMEOUT, settings.API_SYNC_DEADLINE, settings.API_SYNC_RETRIES = 1, 5, 0
    service = SchedulerService(instance_id="sync-off-loop", max_workers=1, enable_api_sync=True,
                               api_sync_interval=300)
    loop = threading.Thread(target=service.run, daemon=True)
    loop.start()
    try:
        wait_for(lambda: api_server.hits["/trickle"] == 1, 5, "the periodic sync never called the API")
        sync_started = time.monotonic()
        seen = set()

        def beats() -> bool:
            seen.update(SchedulerInstance.objects.filter(instance_id="sync-off-loop").values_list("last_seen", flat=True))
            return len(seen) >= 3

        # Heartbeats come every second; three of them inside the 5 s the API is
        # held open prove the main loop is not waiting for it.
        wait_for(beats, 4, "heartbeats froze while the API sync waited")
        assert time.monotonic() - sync_started < 5
    finally:
        service.request_stop()
        loop.join(15)
