"""The audit trail in admin: a read-only list of every entry (nobody adds,
changes or deletes one here), and a "Changes" section on the page of each
schedule, scan profile and alert channel."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit.actor import acting_as
from audit.models import ActorKind, AuditEntry
from scanner_project.admin_readonly import ReadOnlyAdmin
from scanner_project.admin_sections import page_section

SHOWN_ON_PAGE = 20


def _value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "…"


def changes_html(entry: AuditEntry):
    return format_html_join("", "<div><code>{}</code>: {} → {}</div>",
                            ((field, _value(before), _value(after)) for field, (before, after) in entry.changes.items()))


def who(entry: AuditEntry) -> str:
    return f"{entry.get_actor_kind_display()}{': ' + entry.actor if entry.actor else ''}"


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "object_label", "model", "who", "what")
    list_filter = ("model", "action", "actor_kind", ("created_at", admin.DateFieldListFilter))
    search_fields = ("object_label", "actor", "=object_id")
    readonly_fields = ("created_at", "model", "object_id", "object_label", "action", "actor_kind", "actor", "what",
                       "prev_hash", "hash")
    exclude = ("changes",)

    @admin.display(description="who")
    def who(self, obj):
        return who(obj)

    @admin.display(description="field: before → after")
    def what(self, obj):
        return changes_html(obj)


class AuditedActionsMixin:
    """Writes made by a list action are recorded as a bulk action by the user."""

    def response_action(self, request, queryset):
        action = request.POST.get("action", "")
        with acting_as(ActorKind.BULK_ACTION, f"{request.user.get_username()}: {action}"):
            return super().response_action(request, queryset)


class AuditSectionMixin(page_section("Changes", ("change_trail",), permission="audit.view_auditentry")):
    @admin.display(description="audit trail")
    def change_trail(self, obj):
        entries = list(AuditEntry.objects.filter(model=obj._meta.model_name, object_id=obj.pk)[:SHOWN_ON_PAGE])
        if not entries:
            return "No recorded changes."
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M:%S"), e.action, who(e), changes_html(e))
            for e in entries))
        full = reverse("admin:audit_auditentry_changelist") + f"?q={obj.pk}"
        return format_html('<table class="audit-trail"><tr><th>when</th><th>what</th><th>who</th>'
                           '<th>field: before → after</th></tr>{}</table><p><a href="{}">All changes</a></p>',
                           rows, full)
