"""Scan profiles (settings shared by many schedules) and the check of scan
settings against the profile's field rules."""

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from scanner_project.redaction import shown
from schedules.json_limits import json_problem
from schedules.models.changes import ChangeRecordingModel


class ScanProfile(ChangeRecordingModel):
    """Scan settings shared by many schedules. A schedule's own settings win."""

    change_ids = "profile_ids"
    # Deleting a profile sets its schedules' profile to NULL (Schedule.profile).
    unlinked_on_delete = "schedules"

    profile_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    max_pages = models.PositiveIntegerField(default=50)
    scan_depth = models.PositiveIntegerField(default=5)
    max_retries = models.PositiveIntegerField(default=3)
    allow_deep_scan = models.BooleanField(default=False)
    custom_pages = models.JSONField(default=list, blank=True, help_text='Paths such as ["/privacy"]')
    accept_selector = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        db_table = "scan_profiles"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        problem = json_problem(self.custom_pages, name="custom_pages")
        if problem:
            raise ValidationError({"custom_pages": problem})
        if not isinstance(self.custom_pages, list) or not all(
            isinstance(p, str) and p.startswith("/") for p in self.custom_pages
        ):
            raise ValidationError(
                {"custom_pages": f"custom_pages: {shown(self.custom_pages)} must be a list of paths starting with /"}
            )

    # The columns scan_settings_of takes, in order (a join from schedules
    # reads them as profile__<name>).
    SETTING_COLUMNS = ("max_pages", "scan_depth", "max_retries", "allow_deep_scan", "custom_pages", "accept_selector")

    def as_scan_settings(self) -> dict:
        """This profile in the upstream API's key names (what runners receive)."""
        return self.scan_settings_of(*(getattr(self, name) for name in self.SETTING_COLUMNS))

    @staticmethod
    def scan_settings_of(max_pages, scan_depth, max_retries, allow_deep_scan, custom_pages, accept_selector) -> dict:
        """The profile's columns as scan settings; {} when there is no profile
        (a join found none). The one mapping, for model objects and raw rows."""
        if max_pages is None:
            return {}
        return {
            "maxPages": max_pages,
            "scanDepth": scan_depth,
            "maxRetries": max_retries,
            "allow_deep_scan": allow_deep_scan,
            "customPages": list(custom_pages or []),
            "accept_selector": accept_selector,
        }


# Scan settings that ScanProfile has columns for: checked with its field rules.
_PROFILE_FIELDS = {
    "description": "description",
    "allow_deep_scan": "allow_deep_scan",
    "maxPages": "max_pages",
    "scanDepth": "scan_depth",
    "maxRetries": "max_retries",
    "customPages": "custom_pages",
    "accept_selector": "accept_selector",
}


def validate_scan_settings(scan_settings: dict) -> None:
    """Known settings must be what ScanProfile's fields would store, uncoerced.

    Raises ValidationError("maxPages: 'fifty': ..."); unknown keys pass through
    (the upstream API may add settings the runner understands).
    """
    profile = ScanProfile()
    for key, attname in _PROFILE_FIELDS.items():
        if key not in scan_settings:
            continue
        value = scan_settings[key]
        model_field = ScanProfile._meta.get_field(attname)
        try:
            cleaned = model_field.clean(value, profile)
        except ValidationError as exc:
            raise ValidationError(f"{key}: {shown(value)}: {' '.join(exc.messages)}") from None
        except (OverflowError, ValueError, TypeError):  # 1e309 reads as inf, which int() refuses
            cleaned = None
        # "50" would clean to 50 and be stored as text; the runner expects a number.
        if type(cleaned) is not type(value) or cleaned != value:
            raise ValidationError(f"{key}: {shown(value)} is not a {model_field.get_internal_type()} value")
        setattr(profile, attname, value)
    if "customPages" in scan_settings:
        try:
            profile.clean()
        except ValidationError:
            raise ValidationError(
                f"customPages: {shown(scan_settings['customPages'])} must be a list of paths starting with /"
            ) from None


SCAN_SETTING_KEYS = (
    "description",
    "allow_deep_scan",
    "maxPages",
    "scanDepth",
    "maxRetries",
    "customPages",
    "accept_selector",
)
