from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        # The scheduler prunes the trail daily when AUDIT_RETENTION_DAYS is set;
        # the hook keeps schedules from importing audit.
        from audit.pruning import chore
        from schedules.hooks import register_chore

        register_chore(chore)
