"""The scheduler runtime: the path of a slot, top-down, one module per step.

fire.py -> claim.py -> queue.py -> take.py -> lock.py -> run.py -> finish.py

service.py wires them into one ``runscheduler`` process (config.py: its
settings, read once; loops.py: background loops that cannot die silently;
startup.py: the catch-up at start; second_look.py: slots lost at the gate;
housekeeping.py: the chores off the slot path).
"""

from schedules.runtime.config import RuntimeConfig
from schedules.runtime.service import SchedulerService

__all__ = ["RuntimeConfig", "SchedulerService"]
