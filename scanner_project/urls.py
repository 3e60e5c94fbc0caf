from django.contrib import admin
from django.urls import path

from scanner_project.health import healthz
from scanner_project.metrics_view import metrics_view
from schedules.admin.dashboard import dashboard_view

# The app sidebar takes a quarter of a 1,280 px screen from every list; the
# breadcrumbs and the index page lead to the same places.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    # Before admin.site.urls, whose catch-all would take the path.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
]
