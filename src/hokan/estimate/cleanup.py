"""Deleting old data (design document 004 §12: "TTL 31日で自動削除")."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from hokan.core.models import Job
from hokan.estimate.models import Estimate, EstimateSession
from hokan.estimate.followup_jobs import FOLLOWUPS_KIND


def delete_expired(now: datetime | None = None, ttl_days: int | None = None) -> tuple[int, int]:
    """Delete sessions created more than ``DATA_TTL_DAYS`` days ago, with their estimates.

    An estimate is never older than its session, so deleting sessions (cascade) is enough;
    the follow-up jobs of those estimates (core.jobs, ``followup_jobs.FOLLOWUPS_KIND``) go too.
    Returns (sessions deleted, estimates deleted).
    """
    days = settings.DATA_TTL_DAYS if ttl_days is None else ttl_days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    _total, per_model = EstimateSession.objects.filter(created_at__lt=cutoff).delete()
    Job.objects.filter(kind=FOLLOWUPS_KIND, created_at__lt=cutoff).delete()
    return per_model.get(EstimateSession._meta.label, 0), per_model.get(Estimate._meta.label, 0)
