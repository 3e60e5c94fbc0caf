"""Shards: each schedule belongs to one of SHARD_COUNT virtual shards, by a
stable hash of its id, and each shard is leased to one firing instance."""

from __future__ import annotations

import hashlib
import uuid

from django.db import models

SHARD_COUNT = 256


def shard_of(schedule_id: uuid.UUID) -> int:
    """The one definition of a schedule's shard. blake2b of the id's bytes:
    stable across processes and Python versions (hash() is salted per
    process), and balanced whatever kind of UUID the upstream API hands out
    (the low bits of a uuid1 are the host's MAC address)."""
    digest = hashlib.blake2b(schedule_id.bytes, digest_size=4).digest()
    return int.from_bytes(digest, "big") % SHARD_COUNT


class ShardField(models.PositiveSmallIntegerField):
    """A schedule's shard, written from its ``schedule_id`` whenever the row is
    inserted: Django calls pre_save for save() and bulk_create() alike. The id
    never changes, so neither does the shard."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)

    def pre_save(self, model_instance, add):
        value = shard_of(model_instance.pk)
        setattr(model_instance, self.attname, value)
        return value


class ShardLease(models.Model):
    """Who fires one shard's schedules, until when (on the database's clock)."""

    shard = models.PositiveSmallIntegerField(primary_key=True)
    owner = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    held_since = models.DateTimeField(null=True, blank=True)
    # The last owner's last renewal, or its release: the next owner's
    # catch-up fires the slots due since then (shard_leases.catch_up_from).
    last_renewed = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "scheduler_shards"
        ordering = ["shard"]

    def __str__(self) -> str:
        return f"shard {self.shard}"


class ShardMember(models.Model):
    """A firing instance that shares the shards, as its shard keeper last
    said so. Members seen within the lease time split the shards; a
    stopping instance leaves at once."""

    instance_id = models.CharField(max_length=255, primary_key=True)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "scheduler_shard_members"
        ordering = ["instance_id"]

    def __str__(self) -> str:
        return self.instance_id
