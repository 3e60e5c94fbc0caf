"""Importer: schedules from the upstream API (``manage.py syncschedules``).

``client`` fetches the pages, ``entries`` turns one API entry into schedule
fields or a rejection that names the field, ``apply`` writes a whole import in
batches, and ``periodic`` runs it on an interval inside ``runscheduler``;
``config`` holds the settings they read, built once.
"""
