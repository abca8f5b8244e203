"""Choosing one value per field among several candidates (pages, sources): pure, no Django.

Used wherever values for the same fields come from several places (the pages of one site,
later the documents of one municipality): ``best_per_field(candidates, groups=...)``.

Rules:

- candidates are given best source first (e.g. a company's profile page before its homepage);
- per field the value of highest ``confidence`` wins; on a tie the earlier candidate wins;
- a *group* of fields (an address split into prefecture / city / street / postal code, a
  representative's name and title) is taken whole from one candidate — the one whose value
  for the group's first field wins by the same rule — so that one address or one person is
  never stitched together from two sources. Fields of a group are never chosen one by one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hokan.core.fields import FieldValue


def best_per_field(
    candidates: Sequence[Mapping[str, FieldValue]],
    *,
    groups: Sequence[Sequence[str]] = (),
) -> dict[str, FieldValue]:
    """{field: chosen FieldValue} from ``candidates`` (each {field: FieldValue}, best source first).

    groups: tuples of field names taken together from one candidate, chosen by the
        confidence of the group's first field (a candidate lacking it cannot give the group).
    Raises nothing; empty input gives ``{}``.
    """
    grouped = {name for group in groups for name in group}
    best: dict[str, FieldValue] = {}
    for values in candidates:
        for name, value in values.items():
            if name in grouped:
                continue
            if name not in best or value.confidence > best[name].confidence:
                best[name] = value
    for group in groups:
        lead_field = group[0]
        chosen: Mapping[str, FieldValue] | None = None
        for values in candidates:
            first = values.get(lead_field)
            if first is None:
                continue
            if chosen is None or first.confidence > chosen[lead_field].confidence:
                chosen = values
        if chosen is not None:
            best.update({name: chosen[name] for name in group if name in chosen})
    return best
