"""The lead writes as they were before the bulk import (kept as the baselines of
bench/import_leads.py and bench/apply_values.py, so that both measure against the same code).

``apply_values``: ``manual_fields`` (one select), then one ``update_or_create`` per written value
(a select, then an insert or an update, in a savepoint). Call it after Django is set up.
"""

from __future__ import annotations


def apply_values(lead, values, *, only_missing: bool = True) -> list[str]:
    """The former ``hokan.leads.store.apply_values``."""
    from hokan.leads.models import Lead, LeadFieldSource
    from hokan.leads.store import is_blank, manual_fields

    protected = manual_fields(lead) if lead.pk else set()
    written: list[str] = []
    for value in values:
        if value.method != "manual" and value.field in protected:
            continue
        if only_missing and not is_blank(getattr(lead, value.field)):
            continue
        blank = None if Lead._meta.get_field(value.field).null else ""
        setattr(lead, value.field, blank if value.value is None else value.value)
        written.append(value.field)
    if written and lead.pk is None:
        lead.save()
    by_field = {v.field: v for v in values}
    for name in written:
        value = by_field[name]
        LeadFieldSource.objects.update_or_create(lead=lead, field=name, defaults={
            "method": value.method, "source_url": value.source_url or "", "raw": value.raw[:2000],
            "quote": value.quote[:2000], "confidence": value.confidence, "extractor": value.extractor[:40]})
    return written
