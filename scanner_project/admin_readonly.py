from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records (alerts, audit entries, re-runs) are evidence: listed and shown, never added, edited or deleted."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
