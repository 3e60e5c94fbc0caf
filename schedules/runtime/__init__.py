"""The scheduler runtime: the path of a slot, top-down, one module per step.
fire -> claim -> queue -> take -> lock -> run -> finish; service.py runs them in one process.

Shared by the steps, importing none of them: config (the settings, read
once), context (what a run needs from its instance), specs (a schedule's
snapshot), due (grace and coalescing), bookkeeping (unrun slots, last/next
run), locks, outages, second_look, job_table (the loaded jobs), feed (live
changes) and loops (the one background-loop primitive). startup.py writes the
catch-up at start; housekeeping.py gathers the chores off the slot path.
"""

from schedules.runtime.config import RuntimeConfig
from schedules.runtime.service import SchedulerService

__all__ = ["RuntimeConfig", "SchedulerService"]
