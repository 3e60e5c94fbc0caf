"""What a DEBUG error page may show: Django's filter, with this project's secrets.

Django hides settings whose names look secret (TOKEN, KEY, PASS...), but the
Redis password sits in REDIS_URL and in the cache's LOCATION, and a database
or API URL can carry user info. Those names are hidden too, any string that
looks like a URL with user info is redacted wherever it appears, and local
variables that hold a token or request headers are hidden in every frame,
including those of requests and urllib3 that no decorator can reach.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter

from scanner_project.redaction import redact_userinfo

_FRAME_SECRETS = re.compile(r"token|auth|headers|password|secret", flags=re.I)


class SecretSettingsFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|REDIS|LOCATION|DATABASE_URL|_URL$|DSN", flags=re.I
    )

    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        return redact_userinfo(value) if isinstance(value, str) else value

    def get_traceback_frame_variables(self, request, tb_frame):
        cleansed = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if _FRAME_SECRETS.search(name):
                value = self.cleansed_substitute
            elif isinstance(value, (dict, list, tuple, str)):
                value = self.cleanse_setting(name, value)  # a token= inside **kwargs, user info in a URL
            cleansed.append((name, value))
        return cleansed
