"""Stop and restart the test PostgreSQL and Redis that scripts/test.sh started."""

import os
import subprocess
import time


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


def stop_redis() -> None:
    port = os.environ["TEST_REDIS_PORT"]
    subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], capture_output=True, timeout=10)
    _wait(lambda: subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True).returncode != 0)


def start_redis() -> None:
    port = os.environ["TEST_REDIS_PORT"]
    folder = os.path.join(os.environ["TEST_SERVICES_DIR"], "redis")
    subprocess.run(
        ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder,
         "--daemonize", "yes", "--pidfile", os.path.join(folder, "pid"), "--logfile", os.path.join(folder, "log")],
        check=True, timeout=10,
    )
    _wait(lambda: subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True).returncode == 0)


def stop_postgres() -> None:
    subprocess.run(_as_postgres(os.environ["TEST_PG_CTL"], "-D", os.environ["TEST_PG_DATA"], "-m", "fast", "-w",
                                "stop"), check=True, capture_output=True, timeout=60)


def start_postgres() -> None:
    port = os.environ["TEST_PG_PORT"]
    options = (f"-h 127.0.0.1 -p {port} -k {os.environ['TEST_PG_SOCKET_DIR']} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
    subprocess.run(_as_postgres(os.environ["TEST_PG_CTL"], "-D", os.environ["TEST_PG_DATA"], "-l",
                                os.path.join(os.environ["TEST_SERVICES_DIR"], "pg", "log"), "-w", "-t", "60",
                                "-o", options, "start"), check=True, capture_output=True, timeout=90)


def _wait(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("service did not change state in time")
