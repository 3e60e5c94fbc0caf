"""LOG_FORMAT=json: one JSON object per line, with the job context when there is one."""

import json
import logging

# Attributes that job log lines carry through ``extra=`` (see schedules.runtime).
CONTEXT_FIELDS = ("schedule_id", "execution_id", "instance_id", "scheduled_for")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record),
            "logger": record.name,
            "level": record.levelname,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                payload[field] = str(value)
        if record.exc_info or record.exc_text:
            # exc_text first: the redacting filter (settings.LOGGING) cleaned it.
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(payload)
