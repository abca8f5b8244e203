"""The packaged municipal catalogue (issue 10 §1, design document 003 §3, §10)."""

from __future__ import annotations

import json
import re

import pytest

from hokan.core.errors import InputError
from hokan.core.fields import FieldSpec, clean
from hokan.municipal.catalogue import DATA_FILE, VALIDATION_KINDS, load_catalogue

# §10.3's categories, all of which the catalogue must cover.
CATEGORIES_10_3 = ["環境・ごみ", "防災", "住宅・建築", "雇用・労働", "運転・車", "事業・産業", "土地・農林水産",
                   "外国人・国籍", "市民参加・選挙", "年金・給付"]  # fmt: skip
FIELDS_3 = ["department", "phone", "email", "address", "office_hours", "fee", "premium_rate", "subsidy_amount",
            "required_documents", "application_method", "online_available", "processing_time", "location", "access",
            "parking"]  # fmt: skip


def test_every_variable_is_described_typed_and_named_topic_field():
    cat = load_catalogue()
    assert 180 <= len(cat.variables) <= 260
    topics = {s.topic for s in cat.services}
    for spec in cat.variables:
        assert spec.description and re.search(r"[ぁ-んァ-ン一-龥]", spec.description), spec.name
        assert spec.examples and all(e.strip() for e in spec.examples), spec.name
        assert spec.validation_type in VALIDATION_KINDS, spec.name
        assert spec.category, spec.name
        assert spec.name == f"{spec.topic}_{spec.field}" and spec.topic in topics, spec.name
        assert isinstance(spec.field_spec, FieldSpec) and spec.field_spec.description == spec.description
    cats = {spec.category for spec in cat.variables}
    assert set(CATEGORIES_10_3) <= cats
    assert {f.name for f in cat.fields} >= set(FIELDS_3) | {"postal_code"}


def test_named_services_and_lookup():
    cat = load_catalogue()
    for name in ("kokuho", "juminhyo", "sodaigomi", "jidouteate"):
        svc = cat.service(name)
        assert svc.variables and all(v.topic == name for v in cat.variables_of(svc))
    assert cat.service("国民健康保険").topic == "kokuho"
    assert cat.variable("sodaigomi_fee").field_spec.kind == "fee"
    assert cat.variable("kokuho_phone").field == "phone"
    with pytest.raises(KeyError, match="no_such"):
        cat.variable("no_such")


def test_topics_are_in_the_glossary():
    from pathlib import Path

    glossary = (Path(__file__).resolve().parents[2] / "docs" / "glossary.md").read_text(encoding="utf-8")
    for service in load_catalogue().services:
        assert f"`{service.topic}`" in glossary, service.topic


def test_examples_of_typed_variables_pass_the_core_validator():
    # The examples are what the editor and the LLM see: a typed example must itself be valid.
    for spec in load_catalogue().variables:
        if spec.validation_type in ("phone", "email", "postal_code", "url", "time_range"):
            for example in spec.examples:
                assert clean(spec.field_spec, example) is not None, (spec.name, example)


def _broken(tmp_path, mutate):
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["variables"][3].pop("description"), "説明"),
        (lambda d: d["variables"][3].update(description="  "), "説明"),
        (lambda d: d["variables"][5].update(examples=[]), "例"),
        (lambda d: d["variables"][0].update(validation_type="telephone"), "validation_type"),
        (lambda d: d["variables"][0].update(name="SodaiGomiFee"), "<topic>_<field>"),
        (lambda d: d["variables"].append(dict(d["variables"][0])), "重複"),
        (lambda d: d["services"][0]["variables"].append("juminhyo_nothing"), "juminhyo_nothing"),
    ],
)
def test_a_broken_data_file_is_a_clear_error(tmp_path, mutate, message):
    path = _broken(tmp_path, mutate)
    with pytest.raises(InputError) as info:
        load_catalogue(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text('{"fields": [', encoding="utf-8")
    with pytest.raises(InputError, match="JSON"):
        load_catalogue(bad)
    with pytest.raises(InputError, match="読めません"):
        load_catalogue(tmp_path / "none.json")
