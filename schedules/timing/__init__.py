"""Timing: when a schedule's slots fall.

``triggers`` builds the APScheduler trigger of a schedule (frequency,
time_config, timezone), ``cron`` parses and validates cron expressions, and
``spread`` moves a schedule's slots by a stable offset.
"""
