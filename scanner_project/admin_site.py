"""The project's admin site: Django's, with the search of every list bounded.

A 50,000-character search made SQLite fail ("LIKE or GLOB pattern too
complex", HTTP 500) and gives PostgreSQL a pattern nobody means. Every
ModelAdmin registered here, the project's and Django's own (users, groups),
gets BoundedSearchMixin: a longer search is refused with a message naming
it, and the list shows nothing rather than an error.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.apps import AdminConfig

from scanner_project.redaction import shown

SEARCH_MAX_CHARS = 200


class BoundedSearchMixin:
    def get_search_results(self, request, queryset, search_term):
        if len(search_term) > SEARCH_MAX_CHARS:
            self.message_user(
                request,
                f"Search (q): {shown(search_term, 60)} is {len(search_term)} characters long, more than "
                f"{SEARCH_MAX_CHARS}; nothing was searched. Search for a shorter part of it.",
                messages.ERROR,
            )
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)


class SchedulerAdminSite(admin.AdminSite):
    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, BoundedSearchMixin):
            admin_class = type(admin_class.__name__, (BoundedSearchMixin, admin_class),
                               {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__})
        super().register(model_or_iterable, admin_class, **options)


class SchedulerAdminConfig(AdminConfig):
    """In INSTALLED_APPS instead of "django.contrib.admin": ``admin.site`` is a SchedulerAdminSite."""

    default_site = "scanner_project.admin_site.SchedulerAdminSite"
