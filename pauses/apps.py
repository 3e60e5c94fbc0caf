from django.apps import AppConfig


class PausesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pauses"
    verbose_name = "Pauses"
