"""Shard leases: the only code that reads or writes scheduler_shards.
Every time is the database's (Now()), the clock all instances share.

A lease is held by one instance until ``expires_at``; its owner renews it
with every pass of its shard keeper (runtime/shard_leases.py). An expired
lease is free to take, as is a released one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Case, F, Q, When
from django.db.models.functions import Now

from schedules.models import SHARD_COUNT, ShardLease, ShardMember


def _free() -> Q:
    return Q(owner__isnull=True) | Q(expires_at__lt=Now())


def ensure_leases() -> None:
    """One lease row per shard (idempotent: every instance runs it at start)."""
    if ShardLease.objects.count() < SHARD_COUNT:
        ShardLease.objects.bulk_create([ShardLease(shard=n) for n in range(SHARD_COUNT)], ignore_conflicts=True)


def renew(*, instance_id: str, ttl: float) -> set[int]:
    """Extend every lease this instance still owns; the shards it owns.
    A lease that expired is renewed too while no other instance took it."""
    with transaction.atomic():
        # The row locks keep another instance from taking an expired lease
        # between the read and the renewal (SQLite serialises writers anyway).
        held = set(ShardLease.objects.select_for_update().filter(owner=instance_id)
                   .values_list("shard", flat=True))
        ShardLease.objects.filter(shard__in=held).update(expires_at=Now() + timedelta(seconds=ttl),
                                                         last_renewed=Now())
    return held


def acquire(*, instance_id: str, count: int, ttl: float) -> dict[int, datetime | None]:
    """Take up to ``count`` free shards (lowest numbers first). Returns each
    shard taken with its previous owner's last renewal (None: never held),
    where the catch-up starts. Two instances never take one shard: rows
    locked by another taker are skipped, and the UPDATE repeats the test."""
    if count <= 0:
        return {}
    with transaction.atomic():
        picked = dict(ShardLease.objects.select_for_update(skip_locked=True).filter(_free())
                      .order_by("shard").values_list("shard", "last_renewed")[:count])
        ShardLease.objects.filter(_free(), shard__in=picked).update(
            owner=instance_id, expires_at=Now() + timedelta(seconds=ttl), held_since=Now(), last_renewed=Now())
    return picked


def release(*, instance_id: str, shards: set[int] | None = None, mark: bool = True) -> int:
    """Give up these leases (all: None) at once. ``mark``: their
    last_renewed becomes now, where the next owner's catch-up starts (False:
    the last renewal stays, for leases of a process that died)."""
    leases = ShardLease.objects.filter(owner=instance_id)
    if shards is not None:
        leases = leases.filter(shard__in=shards)
    marked = {"last_renewed": Now()} if mark else {}
    return leases.update(owner=None, expires_at=None, held_since=None, **marked)


def join(*, instance_id: str) -> None:
    """Say this instance shares the shards (every keeper pass)."""
    if not ShardMember.objects.filter(instance_id=instance_id).update(seen_at=Now()):
        ShardMember.objects.update_or_create(instance_id=instance_id, defaults={"seen_at": Now()})


def leave(*, instance_id: str) -> None:
    ShardMember.objects.filter(instance_id=instance_id).delete()


def members(*, ttl: float) -> list[str]:
    """The instances that share the shards: seen within the lease time."""
    ShardMember.objects.filter(seen_at__lt=Now() - timedelta(seconds=ttl * 100)).delete()  # long dead
    return list(ShardMember.objects.filter(seen_at__gte=Now() - timedelta(seconds=ttl))
                .order_by("instance_id").values_list("instance_id", flat=True))


def fair_share(*, instance_id: str, member_ids: list[str]) -> int:
    """This instance's share: SHARD_COUNT split evenly over the members (in
    id order, the first ones take one more), so the shares add up to all."""
    ordered = sorted({*member_ids, instance_id})
    base, extra = divmod(SHARD_COUNT, len(ordered))
    return base + (1 if ordered.index(instance_id) < extra else 0)


def unowned_count(*, longer_than: float = 0.0, using: str = "default") -> int:
    """Shards no live lease covers, for longer than ``longer_than`` seconds
    (since their release or expiry; a lease never held counts as long free)."""
    since = Case(When(owner__isnull=True, then=F("last_renewed")), default=F("expires_at"))
    free = ShardLease.objects.using(using).filter(_free())
    if longer_than > 0:
        free = free.annotate(free_since=since).filter(
            Q(free_since__isnull=True) | Q(free_since__lt=Now() - timedelta(seconds=longer_than)))
    return free.count()


def held_by() -> dict[str, list[int]]:
    """Each owner's shards with live leases (admin's instance list)."""
    owned: dict[str, list[int]] = {}
    for shard, owner in ShardLease.objects.exclude(_free()).values_list("shard", "owner"):
        owned.setdefault(owner, []).append(shard)
    return owned


def describe_shards(shards: list[int]) -> str:
    """0-63, 128, 130-131: the shards in ranges."""
    ranges: list[str] = []
    for shard in sorted(shards):
        if ranges and ranges[-1].split("-")[-1] == str(shard - 1):
            ranges[-1] = f"{ranges[-1].split('-')[0]}-{shard}"
        else:
            ranges.append(str(shard))
    return ", ".join(ranges)
