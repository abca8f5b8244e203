"""Cross-check hokan.core.ja against the hand labels of the shared company pages."""

import json

import pytest

from hokan.core.ja import (
    parse_corporate_number,
    parse_date,
    parse_employee_count,
    parse_phone,
    parse_yen,
    split_address,
    split_representative,
)


@pytest.fixture(scope="module")
def labels(shared_data):
    path = shared_data / "company_pages" / "labels.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text(encoding="utf-8"))


def test_it_parses_every_labelled_capital(labels):
    for row in labels:
        if row["capital_raw"]:
            assert parse_yen(row["capital_raw"]) == row["capital_yen"], row["file"]


def test_it_parses_every_labelled_employee_count(labels):
    for row in labels:
        if row["employees_raw"]:
            assert parse_employee_count(row["employees_raw"]).count == row["employees"], row["file"]


def test_it_parses_every_labelled_phone_in_national_format(labels):
    for row in labels:
        if row["phone"]:
            assert parse_phone(row["phone"]).national == row["phone"], row["file"]


def test_it_parses_every_labelled_date_address_and_representative(labels):
    for row in labels:
        if row["established"]:
            assert parse_date(row["established"]) is not None, row["file"]
        if row["address"]:
            assert split_address(row["address"]).city, row["file"]
        if row["representative"]:
            assert split_representative(row["representative"]) is not None, row["file"]


def test_it_accepts_only_valid_labelled_corporate_numbers(labels):
    for row in labels:
        number = row["corporate_number"]
        if number:
            # a 14-digit label (a typo on the page) must not pass as a 法人番号
            assert parse_corporate_number(number) == (number if len(number) == 13 else None), row["file"]
