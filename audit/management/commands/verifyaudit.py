from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain


class Command(BaseCommand):
    help = ("Check the audit trail's hash chain: exit status 0 when it is intact, 1 naming the first entry "
            "that was altered, removed from the middle or the end, or inserted. Prints the head hash: keep "
            "it elsewhere to tell later that the chain was not rewritten as a whole.")

    def handle(self, **options):
        report = verify_chain()
        if not report.intact:
            raise CommandError(f"Audit trail broken: {report.problem}", returncode=1)
        self.stdout.write(f"Audit trail intact: {report.checked} entr{'y' if report.checked == 1 else 'ies'}, "
                          f"head {report.head_hash}.")
