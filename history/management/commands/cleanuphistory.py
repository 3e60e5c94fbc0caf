from history.cleanup import cleanup_old_executions
from scanner_project.arguments import RetentionCommand


class Command(RetentionCommand):
    help = ("Delete execution history older than --days, in batches (like clearsessions). It never deletes "
            "audit entries: the audit trail has its own retention (cleanupaudit, AUDIT_RETENTION_DAYS).")
    kept = "executions started"
    after = " Audit entries are kept (cleanupaudit prunes them)."

    def delete(self, *, days: int, batch_size: int, dry_run: bool) -> int:
        return cleanup_old_executions(days=days, batch_size=batch_size, dry_run=dry_run)

    def counted(self, count: int) -> str:
        return f"{count} execution(s)"
