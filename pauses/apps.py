from django.apps import AppConfig


class PausesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pauses"
    verbose_name = "Pauses"

    def ready(self) -> None:
        # schedules never imports pauses: it reads what is registered here.
        from pauses.hooks import register

        register()
