"""A paginator for tables too large to COUNT(*) on every admin page."""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Past this many rows an exact count costs more than it tells an operator.
COUNT_CAP = 10_000


class EstimatedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows of a filtered list; on PostgreSQL an
    unfiltered list takes the planner's row estimate instead."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None:
            return super().count
        if not query.where and connections[queryset.db].vendor == "postgresql":
            estimate = _planner_estimate(queryset)
            if estimate > COUNT_CAP:
                return estimate
        return queryset.order_by().values("pk")[: COUNT_CAP + 1].count()


def _planner_estimate(queryset) -> int:
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [queryset.model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else 0
