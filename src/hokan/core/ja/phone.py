"""Japanese phone numbers, validated with ``phonenumbers`` (Google libphonenumber metadata)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from hokan.core.ja.text import fold_with_offsets

# libphonenumber number types → our kinds. In the JP metadata 050 numbers are VOIP,
# 0120/0800 TOLL_FREE, 070/080/090 MOBILE; 0570 (ナビダイヤル) is UAN → "other".
_KINDS = {
    PhoneNumberType.FIXED_LINE: "fixed",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.VOIP: "ip",
}
# Text right before a match that means it is not a phone (postal code, 法人番号 run).
_NOT_PHONE_BEFORE = re.compile(r"(?:〒|郵便番号|法人番号|登録番号|(?<![A-Za-z])T)\s*[:]?\s*$")


@dataclass(frozen=True)
class Phone:
    """A valid Japanese phone number.

    e164: "+81355398051"; national: libphonenumber NATIONAL format, e.g. "03-5339-8051";
    kind: "fixed" | "mobile" | "toll_free" | "ip" | "other".
    """

    e164: str
    national: str
    kind: str


def _phone(number: phonenumbers.PhoneNumber) -> Phone | None:
    if number.country_code != 81 or not phonenumbers.is_valid_number(number):
        return None
    return Phone(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        national=phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        kind=_KINDS.get(phonenumbers.number_type(number), "other"),
    )


def find_phones(text: str) -> list[tuple[Phone, str]]:
    """All valid Japanese phones in ``text``, in order, each with the raw matched substring.

    Only numbers of country code 81 count (a foreign number on a Japanese lead is not its
    phone). Postal codes, dates, amounts and 13-digit 法人番号 are not taken: libphonenumber's
    matcher (leniency VALID) rejects them, and a match right after 〒/法人番号/T is skipped.
    """
    folded, offsets = fold_with_offsets(text)
    found: list[tuple[Phone, str]] = []
    for match in phonenumbers.PhoneNumberMatcher(folded, "JP", leniency=phonenumbers.Leniency.VALID):
        if _NOT_PHONE_BEFORE.search(folded[: match.start]):
            continue
        phone = _phone(match.number)
        if phone is not None:
            raw = text[offsets[match.start] : offsets[match.end - 1] + 1]
            found.append((phone, raw))
    return found


def parse_phone(text: str) -> Phone | None:
    """The first valid Japanese phone in ``text`` (``TEL:06-6627-2516``, ``(03)1234-5678``,
    ``+81 3-1234-5678``, full-width forms), or None. Never raises."""
    phones = find_phones(text)
    return phones[0][0] if phones else None
