"""Turning a cell, a person's edit, a rule's match or an LLM's answer into a Lead column's value.

Every path validates with ``hokan.core.fields.clean`` and the column's FieldSpec
(``columns.SPECS``): a vague value (「非公開」, 「要確認」, 「詳細はお問い合わせください」, …) is no
value; a value that does not validate raises ``InvalidValue`` (a ``ValueError``) with a Japanese
reason naming what was expected.

An address (所在地) may stand for several columns: ``address_values`` splits one into
prefecture / city / location / postal code the same way for an import and an LLM answer.
"""

from __future__ import annotations

from typing import Any

from hokan.core import ja
from hokan.core.errors import InvalidValue
from hokan.core.fields import FieldValue, clean, clean_field_value
from hokan.leads.columns import SPECS


def clean_value(field: str, raw: Any) -> Any:
    """Validate and normalise ``raw`` for the Lead column ``field``.

    Returns the normalised value (str, int for counts and years, int JPY for amounts,
    national-format phone), or None when ``raw`` is empty or vague.

    Raises:
        InvalidValue: the value is present but invalid (a ValueError; message in Japanese).
        KeyError: ``field`` is not a Lead column.
    """
    return clean(SPECS[field], raw)


def clean_lead_value(value: FieldValue) -> FieldValue | None:
    """A rule's, the registry's or an LLM's FieldValue re-validated for its Lead column: the
    value normalised (provenance kept), or None when it is missing, vague, invalid or not a
    Lead column."""
    spec = SPECS.get(value.field)
    return None if spec is None else clean_field_value(spec, value)


def address_values(text: str, *, require_city: bool) -> dict[str, str]:
    """One address text as Lead columns: {prefecture, city, location[, postal_code]}.

    The prefecture must be written (or, with ``require_city``, inferred from a designated city,
    a prefectural capital or a Tokyo ward); ``require_city``: the city must be found too (an LLM's
    所在地 answer). Returns {} when the text does not split that way (an import then keeps it
    as the 所在地 text). Raises nothing.
    """
    if ja.is_vague(text):
        return {}
    address = ja.split_address(text)
    if address is None or not address.prefecture:
        return {}
    if require_city and not address.city:
        return {}
    if not require_city and address.prefecture_inferred:
        return {}
    values = {"prefecture": address.prefecture, "location": address.rest}
    if address.city:
        values["city"] = address.city
    if address.postal_code:
        values["postal_code"] = address.postal_code
    return values


def location_answer(raw: str) -> dict[str, Any]:
    """An LLM's 所在地 answer as {prefecture, city, location[, postal_code]}; {} when vague.

    Raises:
        InvalidValue: not an address starting with prefecture and city.
    """
    if ja.is_vague(raw):
        return {}
    values = address_values(raw, require_city=True)
    if not values:
        raise InvalidValue(f"都道府県・市区町村から始まる住所として読めません: {raw}", field="location", label="所在地",
                           raw=raw)
    cleaned = {name: clean(SPECS[name], value) for name, value in values.items()}
    return {name: value for name, value in cleaned.items() if value is not None}
