from django.contrib import admin
from django.utils.html import format_html

from .models import JobExecution
from .pagination import EstimatedCountPaginator

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


@admin.register(JobExecution)
class JobExecutionAdmin(admin.ModelAdmin):
    """History is evidence: nobody adds, edits or deletes it from admin."""

    list_display = (
        "started_at",
        "coloured_status",
        "domain",
        "scheduled_for",
        "duration",
        "scan_id",
        "trigger",
        "instance_id",
        "error_excerpt",
    )
    list_filter = ("status", "trigger", ("started_at", admin.DateFieldListFilter))
    search_fields = ("domain", "=domain_config_id", "=scan_id")
    date_hierarchy = None
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_select_related = False
    ordering = ("-started_at",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

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

    @admin.display(description="duration", ordering="duration_seconds")
    def duration(self, obj):
        return "" if obj.duration_seconds is None else f"{obj.duration_seconds:.2f} s"

    @admin.display(description="error")
    def error_excerpt(self, obj):
        message = obj.error_message or ""
        return message if len(message) <= 80 else message[:77] + "..."
