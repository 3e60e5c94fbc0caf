"""Imports each named module first thing in a process of its own, forked from
one that has set Django up (run as a script by tests/test_architecture.py).

Usage: python tests/import_alone.py MODE MODULE...; prints one JSON object
{"loaded": [project modules already loaded at the fork point],
 "results": {module: "ok" | "loaded" | traceback}} on stdout.

MODE "after-setup": the fork point is the end of django.setup(). A module
that setup already loaded is reported "loaded" (setup imported it in its own
order; importing it again would prove nothing).

MODE "before-ready": the fork point is inside django.setup(), after every
models module is loaded and before any AppConfig.ready() runs. This is for
the modules that setup loads only through ready() hooks (admin autodiscovery,
the audit chore's registration): after setup they are all loaded already, so
this is the earliest point where each can be the first of them imported.
"""

import importlib
import json
import os
import sys
import traceback

PROJECT_PACKAGES = ("scanner_project", "schedules", "history", "alerts", "pauses", "reruns", "audit")


def _project_modules() -> list[str]:
    return sorted(name for name in sys.modules if name.split(".")[0] in PROJECT_PACKAGES)


def _import_in_child(name: str) -> str:
    """Fork; the child imports ``name`` and reports "ok" or its traceback."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            importlib.import_module(name)
            outcome = "ok"
        except BaseException:  # noqa: BLE001 - any failure of the import is the finding, reported whole
            outcome = traceback.format_exc()
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(outcome.encode())
        # No atexit hooks, no flushing of the parent's buffers, no setup left to finish.
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not outcome:
        return f"the importing process ended with status {status}: {outcome}"
    return outcome


def serve(modules: list[str]) -> None:
    loaded = _project_modules()
    results = {name: "loaded" if name in loaded else _import_in_child(name) for name in modules}
    sys.stdout.write(json.dumps({"loaded": loaded, "results": results}))
    sys.stdout.flush()
    os._exit(0)


def main() -> None:
    mode, modules = sys.argv[1], sys.argv[2:]
    import django

    if mode == "after-setup":
        django.setup()
        serve(modules)
    if mode != "before-ready":
        raise SystemExit(f"unknown mode {mode!r}")
    from django.apps.registry import Apps

    get_app_configs = Apps.get_app_configs

    def serve_before_ready(apps: Apps):
        # populate() calls this to start its ready() phase, just after it
        # sets models_ready; the models are all loaded, no ready() has run.
        if apps.models_ready and not apps.ready:
            serve(modules)
        return get_app_configs(apps)

    Apps.get_app_configs = serve_before_ready
    django.setup()
    raise SystemExit("django.setup() finished without reaching its ready() phase")


if __name__ == "__main__":
    main()
