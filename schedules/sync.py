"""The README's Python call for an import from the upstream API.

The import itself lives in schedules/importer/ (client, entries, apply).
"""

from schedules.importer.apply import sync_schedules_from_api

__all__ = ["sync_schedules_from_api"]
