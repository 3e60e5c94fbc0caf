"""First fire times for 100,000 schedules, computed as runtime.load_all does.

No database: this is the trigger arithmetic alone. ``--code`` points at another
checkout (an older commit) so both can be measured the same way, alternately:

    .venv/bin/python bench/bench_fire_times.py --runs 3
    .venv/bin/python bench/bench_fire_times.py --runs 3 --code /tmp/old-checkout

Scenarios:
- shared: 100,000 daily schedules at 1,440 distinct times (the start-up
  benchmark's data, in Europe/Berlin); equal triggers are shared, and each
  distinct trigger's first fire is computed once, as load_all does.
- distinct: ``--distinct`` schedules (20,000) with as many different
  triggers (cron ``m h d * *`` in three zones): nothing is shared, the worst
  case, where each schedule pays for parsing and one first fire.
Each at an ordinary instant and one hour before Berlin's fall-back change.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANTS = {"ordinary": datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc),
            "near a change": datetime(2026, 10, 25, 0, 0, tzinfo=timezone.utc)}
ZONES = ("Europe/Berlin", "America/New_York", "Pacific/Chatham")


def shared(triggers, count: int, now: datetime) -> None:
    triggers.trigger_for_key.cache_clear()
    first_fire = {}
    for n in range(count):
        key = triggers.trigger_key("daily", {"hour": n % 24, "minute": (n // 24) % 60}, "Europe/Berlin")
        if key not in first_fire:
            first_fire[key] = triggers.trigger_for_key(key).get_next_fire_time(None, now)


def distinct(triggers, count: int, now: datetime) -> None:
    for n in range(count):
        minute, hour, day = n % 60, (n // 60) % 24, (n // 1440) % 31 + 1
        zone = ZONES[n // 44640]
        triggers.build_trigger("cron", {"expression": f"{minute} {hour} {day} * *"}, zone).get_next_fire_time(None, now)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schedules", type=int, default=100000)
    parser.add_argument("--distinct", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--code", default=str(ROOT), help="checkout whose schedules/timing/triggers.py is measured")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.stats import summary

    sys.path.insert(0, args.code)
    sys.modules.pop("schedules", None)
    triggers = importlib.import_module("schedules.timing.triggers")
    print(f"code: {Path(triggers.__file__).resolve()}")
    for scenario, count in ((shared, args.schedules), (distinct, args.distinct)):
        for label, now in INSTANTS.items():
            seconds = []
            for _ in range(args.runs):
                begun = time.perf_counter()
                scenario(triggers, count, now)
                seconds.append(time.perf_counter() - begun)
            s = summary(seconds)
            print(f"{scenario.__name__:8} {label:13} {count} schedules, {args.runs} runs: "
                  f"median {s['median']:.3f} s, p95 {s['p95']:.3f} s, p99 {s['p99']:.3f} s")


if __name__ == "__main__":
    main()
