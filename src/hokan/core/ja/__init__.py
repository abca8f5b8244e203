"""Pure (Django-free) normalisers and validators for Japanese business data.

Every parser takes ``str``, never raises on ordinary text, and returns None when the
text holds no valid value (vague answers such as 非公開 or 「お問い合わせください」 included).
"""

from hokan.core.ja.address import (
    CAPITAL_CITIES,
    DESIGNATED_CITIES,
    PREFECTURES,
    TOKYO_WARDS,
    Address,
    split_address,
)
from hokan.core.ja.company import (
    LEGAL_FORMS,
    company_name_key,
    company_type,
    normalize_company_name,
)
from hokan.core.ja.corporate_number import is_valid_corporate_number, parse_corporate_number
from hokan.core.ja.counts import EmployeeCount, parse_employee_count
from hokan.core.ja.dates import ERAS, JaDate, parse_date, parse_year, wareki_to_year
from hokan.core.ja.money import parse_yen
from hokan.core.ja.people import Representative, split_representative
from hokan.core.ja.phone import Phone, find_phones, parse_phone
from hokan.core.ja.postal import parse_postal_code
from hokan.core.ja.text import fold, fold_with_offsets, is_vague, names_a_means

__all__ = [
    "CAPITAL_CITIES",
    "DESIGNATED_CITIES",
    "ERAS",
    "LEGAL_FORMS",
    "PREFECTURES",
    "TOKYO_WARDS",
    "Address",
    "EmployeeCount",
    "JaDate",
    "Phone",
    "Representative",
    "company_name_key",
    "company_type",
    "find_phones",
    "fold",
    "fold_with_offsets",
    "is_vague",
    "names_a_means",
    "is_valid_corporate_number",
    "normalize_company_name",
    "parse_corporate_number",
    "parse_date",
    "parse_employee_count",
    "parse_phone",
    "parse_postal_code",
    "parse_year",
    "parse_yen",
    "split_address",
    "split_representative",
    "wareki_to_year",
]
