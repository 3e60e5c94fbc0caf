from audit.actor import acting_as
from audit.models import ActorKind
from audit.pruning import prune_old_entries
from scanner_project.arguments import RetentionCommand


class Command(RetentionCommand):
    help = ("Delete audit entries older than --days, oldest first, keeping the hash chain verifiable: each "
            "batch appends an entry saying up to which hash it pruned. The only command that deletes audit "
            "entries (cleanuphistory never does); AUDIT_RETENTION_DAYS does the same daily.")
    kept = "audit entries written"

    def delete(self, *, days: int, batch_size: int, dry_run: bool) -> int:
        with acting_as(ActorKind.COMMAND, "cleanupaudit"):
            return prune_old_entries(days=days, batch_size=batch_size, dry_run=dry_run)

    def counted(self, count: int) -> str:
        return f"{count} audit entr{'y' if count == 1 else 'ies'}"
