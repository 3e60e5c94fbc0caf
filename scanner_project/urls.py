from django.contrib import admin
from django.urls import path

from schedules.dashboard import dashboard_view

from .health import healthz
from .metrics_view import metrics_view

urlpatterns = [
    # Before admin.site.urls, whose catch-all would take the path.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
]
