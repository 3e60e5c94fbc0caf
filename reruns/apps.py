from django.apps import AppConfig


class RerunsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reruns"
    verbose_name = "Re-runs of missed slots"

    def ready(self) -> None:
        # schedules never imports reruns: it reads what is registered here.
        from reruns.hooks import register

        register()
