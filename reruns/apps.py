from django.apps import AppConfig


class RerunsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reruns"
    verbose_name = "Re-runs of missed slots"
