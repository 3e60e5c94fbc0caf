import os

import pytest
from django.conf import settings

from tests.stored_rows import stored  # noqa: F401 - a fixture, shared by the bad-input and security tests


def pytest_configure(config):
    # The suite is only honest against the real services: never fall back.
    missing = []
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        missing.append("DATABASE_URL (PostgreSQL)")
    if not os.environ.get("REDIS_URL"):
        missing.append("REDIS_URL")
    if missing:
        pytest.exit(
            f"tests need {' and '.join(missing)}; run them with scripts/test.sh, which starts both", returncode=2
        )


@pytest.fixture(autouse=True)
def _fast_intervals(settings):
    # Many tests run interval schedules every second; production refuses
    # intervals under MIN_INTERVAL_SECONDS (60). tests/test_min_interval.py
    # checks the default. Subprocesses get the same from tests/cluster.py.
    settings.MIN_INTERVAL_SECONDS = 1


@pytest.fixture(autouse=True)
def _clean_redis():
    from django_redis import get_redis_connection

    get_redis_connection("default").flushdb()
    yield


@pytest.fixture
def redis_client():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


@pytest.fixture
def staff(client, db):
    """Log the test client in as a staff user holding only the given permissions."""
    from django.contrib.auth.models import Permission, User

    def login(*codenames):
        user = User.objects.create_user(f"staff{User.objects.count()}", password="pw-for-tests", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client.force_login(user)
        return user

    return login


@pytest.fixture
def make_schedule(db):
    from schedules.models import Schedule

    counter = iter(range(1, 10**6))

    def make(**fields):
        n = next(counter)
        fields.setdefault("domain_config_id", f"cfg-{n}")
        fields.setdefault("domain", f"site{n}.example.com")
        fields.setdefault("frequency", "daily")
        fields.setdefault("time_config", {"hour": 2, "minute": 0})
        schedule = Schedule(**fields)
        schedule.full_clean()
        schedule.save()
        return schedule

    return make


def pytest_report_header(config):
    return [f"database: {settings.DATABASES['default']['ENGINE']}", f"redis: {bool(settings.REDIS_URL)}"]


@pytest.fixture
def api_server():
    """A real HTTP server on 127.0.0.1 playing the upstream API (tests/api_server.py)."""
    from tests.api_server import ApiServer

    with ApiServer() as server:
        yield server


API_TOKEN_FOR_TESTS = "tok-3f9a-never-shown"


@pytest.fixture
def sync_settings(settings):
    """Small timeouts so failure tests finish in fractions of a second."""
    settings.API_URL = ""
    settings.API_TOKEN = API_TOKEN_FOR_TESTS
    settings.REQUEST_TIMEOUT = 0.3
    settings.API_SYNC_DEADLINE = 1.0
    settings.API_SYNC_RETRIES = 2
    settings.API_SYNC_BACKOFF = 0.01
    settings.HTTP_MAX_RESPONSE_BYTES = 2 * 1024 * 1024
    return settings


@pytest.fixture(autouse=True, scope="session")
def _quiet_smtp_server_log():
    # aiosmtpd logs every SMTP command at INFO.
    import logging

    logging.getLogger("mail.log").setLevel(logging.WARNING)
