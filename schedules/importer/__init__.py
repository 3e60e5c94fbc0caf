"""Importer: schedules from the upstream API (``manage.py syncschedules``).

``client`` fetches the pages, ``entries`` turns one API entry into schedule
fields or a rejection that names the field, ``apply`` writes a whole import in
batches (``run_periodic_sync``: one interval's import inside ``runscheduler``,
on a loop of its own); ``config`` holds the settings they read, built once.
"""
