import json

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from history import admin_scan
from history.admin_filters import DomainFilter, InstanceFilter
from history.models import ExecutionStatus, JobExecution
from history.pagination import EstimatedCountPaginator
from history.wording import lateness
from scanner_project.redaction import redact

STATUS_COLOURS = {
    "success": "#1a7f37",
    "failed": "#cf222e",
    "running": "#0969da",
    "queued": "#0969da",
    "skipped": "#9a6700",
    "missed": "#bc4c00",
    "abandoned": "#8250df",
    "interrupted": "#6e7781",
}
# Shown only when they have something to show.
SCAN_FIELDS = ("scan_site", "scan_pages", "scan_cookies", "scan_storage", "scan_requests", "scan_consent",
               "scan_refused", "scan_changes")
PRE_STYLE = "white-space:pre-wrap;max-height:40em;overflow:auto;margin:0"


def schedule_change_url(schedule_id) -> str:
    # By URL name: history never imports the schedules app.
    try:
        return reverse("admin:schedules_schedule_change", args=[schedule_id])
    except NoReverseMatch:
        return ""


@admin.register(JobExecution)
class JobExecutionAdmin(admin.ModelAdmin):
    """History is evidence: nobody adds, edits or deletes it from admin."""

    list_display = (
        "started_at",
        "coloured_status",
        "schedule_link",
        "slot",
        "duration",
        "trigger",
        "instance_id",
        "error_excerpt",
    )
    list_filter = ("status", "trigger", ("started_at", admin.DateFieldListFilter), DomainFilter, InstanceFilter)
    search_fields = ("domain", "=domain_config_id", "=scan_id")
    date_hierarchy = None
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_select_related = False
    ordering = ("-started_at",)
    fieldsets = (
        (None, {"fields": ("execution_id", "coloured_status", "schedule_link", "domain", "domain_config_id",
                           "job_id", "trigger", "scan_id", "instance_id", "deliveries")}),
        ("Times", {"fields": ("scheduled_for", "slot", "started_at", "start_delay_display", "completed_at", "duration",
                              "heartbeat_at",
                              "created_at")}),
        ("Error", {"fields": ("error_message_shown", "error_type", "traceback", "error_details_pretty")}),
        ("Scan", {"fields": SCAN_FIELDS[:-1]}),
        ("Changes since the previous scan", {"fields": SCAN_FIELDS[-1:]}),
        ("Result", {"fields": ("metadata_pretty",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _, options in self.fieldsets for name in options["fields"]]

    def get_fieldsets(self, request, obj=None):
        """Without the scan's empty sections, and without a section none of
        whose fields has anything to show."""
        fieldsets = []
        for name, options in super().get_fieldsets(request, obj):
            fields = [field for field in options["fields"] if field not in SCAN_FIELDS or
                      (obj is not None and getattr(self, field)(obj))]
            if fields:
                fieldsets.append((name, {**options, "fields": fields}))
        return fieldsets

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def coloured_status(self, obj):
        return format_html(
            '<span style="color:{};font-weight:bold">{}</span>', STATUS_COLOURS.get(obj.status, "inherit"), obj.status
        )

    @admin.display(description="schedule", ordering="domain")
    def schedule_link(self, obj):
        # Only the FK's id is read: no join, no query per row.
        url = schedule_change_url(obj.schedule_id) if obj.schedule_id else ""
        if not url:
            return f"{obj.domain} (deleted schedule)" if obj.schedule_id is None else obj.domain
        return format_html('<a href="{}">{}</a>', url, obj.domain)

    @admin.display(description="slot", ordering="scheduled_for")
    def slot(self, obj):
        """The slot's time and how late it started ("started 4 minutes late")."""
        if obj.scheduled_for is None:
            return "manual run"
        when = timezone.localtime(obj.scheduled_for).strftime("%Y-%m-%d %H:%M:%S")
        if obj.status in (ExecutionStatus.MISSED, ExecutionStatus.SKIPPED):
            note = "not run"
        elif obj.status == ExecutionStatus.QUEUED:
            note = "waiting for a free worker"
        else:
            note = lateness(scheduled_for=obj.scheduled_for, started_at=obj.started_at)
        return format_html('<span class="nowrap">{}</span><br><small class="lateness">{}</small>', when, note)

    @admin.display(description="duration", ordering="duration_seconds")
    def duration(self, obj):
        return "" if obj.duration_seconds is None else f"{obj.duration_seconds:.2f} s"

    @admin.display(description="start delay")
    def start_delay_display(self, obj):
        delay = obj.start_delay
        return "" if delay is None else f"{delay.total_seconds():.2f} s"

    # Errors are redacted when stored; shown redacted too, for rows stored before.
    @admin.display(description="error message")
    def error_message_shown(self, obj):
        return redact(obj.error_message or "")

    @admin.display(description="error")
    def error_excerpt(self, obj):
        message = redact(obj.error_message or "")
        return message if len(message) <= 80 else message[:77] + "..."

    @admin.display(description="error type")
    def error_type(self, obj):
        return (obj.error_details or {}).get("type", "") if isinstance(obj.error_details, dict) else ""

    @admin.display(description="traceback")
    def traceback(self, obj):
        details = obj.error_details if isinstance(obj.error_details, dict) else {}
        text = redact(details.get("traceback") or "")
        return format_html('<pre class="traceback" style="{}">{}</pre>', PRE_STYLE, text) if text else "-"

    @admin.display(description="error details")
    def error_details_pretty(self, obj):
        details = obj.error_details
        if isinstance(details, dict) and "traceback" in details:
            # Shown above in its own field, once.
            details = {key: value for key, value in details.items() if key != "traceback"}
        return _json_block(details)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj):
        """What the tables above do not show (the runner, its attempts, ...)."""
        metadata = obj.metadata if isinstance(obj.metadata, dict) else {}
        return _json_block({key: value for key, value in metadata.items() if key not in ("scan", "changes")})

    @admin.display(description="first-party site")
    def scan_site(self, obj):
        site = _scan(obj).get("site")
        return site if isinstance(site, str) else ""

    @admin.display(description="pages")
    def scan_pages(self, obj):
        return admin_scan.pages_table(_scan(obj))

    @admin.display(description="cookies")
    def scan_cookies(self, obj):
        return admin_scan.cookies_table(admin_scan.entries(_scan(obj), "cookies"))

    @admin.display(description="localStorage")
    def scan_storage(self, obj):
        return admin_scan.storage_table(_scan(obj))

    @admin.display(description="hosts contacted")
    def scan_requests(self, obj):
        return admin_scan.requests_table(_scan(obj))

    @admin.display(description="consent")
    def scan_consent(self, obj):
        return admin_scan.consent_table(_scan(obj))

    @admin.display(description="refused hosts")
    def scan_refused(self, obj):
        return admin_scan.refused_table(_scan(obj))

    @admin.display(description="changes")
    def scan_changes(self, obj):
        return admin_scan.changes_html((obj.metadata or {}).get("changes") if isinstance(obj.metadata, dict) else None)


def _scan(obj) -> dict:
    scan = obj.metadata.get("scan") if isinstance(obj.metadata, dict) else None
    return scan if isinstance(scan, dict) else {}


def _json_block(value):
    if value in (None, {}, []):
        return "-"
    return format_html('<pre style="{}">{}</pre>', PRE_STYLE,
                       redact(json.dumps(value, indent=2, sort_keys=True, default=str)))
