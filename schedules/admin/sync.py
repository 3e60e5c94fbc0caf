"""The changelist's "Sync from API now" button."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from scanner_project.redaction import redact
from schedules.importer.apply import SyncError, sync_schedules_from_api
from schedules.importer.client import ApiNotConfigured

# What a web user can do about it (the command's "--url" is no help here).
NOT_CONFIGURED = ("API sync is not set up: the service has no valid API_URL. It is read from the service's "
                  "environment: whoever deploys it sets API_URL (and API_TOKEN if the API needs one) and restarts "
                  "it. Until then, add schedules here with \"Add schedule\".")


def sync_view(*, model_admin: admin.ModelAdmin):
    @require_POST  # a GET (a prefetch, a crawler) must not start an import
    def view(request: HttpRequest):
        if not model_admin.has_change_permission(request):
            raise PermissionDenied
        try:
            result = sync_schedules_from_api()
        except ApiNotConfigured:
            model_admin.message_user(request, NOT_CONFIGURED, messages.ERROR)
        except SyncError as exc:
            model_admin.message_user(request, f"API sync failed: {redact(str(exc))}", messages.ERROR)
        else:
            summary = (
                f"API sync: created {result['created']}, updated {result['updated']}, "
                f"skipped {result['skipped']}, held back {len(result['held_back'])}."
            )
            model_admin.message_user(request, summary, messages.SUCCESS)
            if result["rejected"]:
                shown = "; ".join(result["rejected"][:10])
                more = f" (and {len(result['rejected']) - 10} more)" if len(result["rejected"]) > 10 else ""
                model_admin.message_user(
                    request, f"{len(result['rejected'])} invalid entries: {shown}{more}", messages.WARNING
                )
        return HttpResponseRedirect(reverse(f"{model_admin.admin_site.name}:schedules_schedule_changelist"))

    return model_admin.admin_site.admin_view(view)
