"""core.extract.llm: the answer schema, validation, grounding in our pages, confidence."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest

from hokan.core.extract.llm import (
    CITED_CONFIDENCE,
    GROUNDED_CONFIDENCE,
    UNCITED_CONFIDENCE,
    answer_schema,
    answer_template,
    grounding_page,
    values_from_answer,
)
from hokan.core.web import Page


@dataclass(frozen=True)
class Spec:
    name: str
    label: str
    prompt_label: str


SPECS = [Spec("capital", "資本金", "資本金"), Spec("employee_count", "従業員数", "従業員数")]


def clean(name: str, raw: str) -> dict:
    if "非公開" in raw:
        return {}
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not digits:
        raise ValueError(f"数値として読めません: {raw}")
    return {name: int(digits)}


def page(url: str, text: str) -> Page:
    return Page(url=url, final_url=url, status_code=200, content_type="text/html", content=text.encode(), text=text,
                encoding="utf-8", fetched_at=dt.datetime.now(dt.UTC), from_snapshot=True)


def test_the_schema_and_template_list_every_label_with_value_source_and_quote():
    schema = answer_schema(["資本金", "設立年"])
    assert schema["required"] == ["資本金", "設立年"] and schema["additionalProperties"] is False
    assert schema["properties"]["資本金"]["required"] == ["value", "source_url", "quote"]
    assert json.loads(answer_template(["資本金"])) == {"資本金": {"value": "", "source_url": "", "quote": ""}}


def test_confidence_follows_the_evidence_grounded_cited_or_none():
    pages = [page("https://a.example/company/", "<table><tr><th>資本金</th><td>１，０００万円</td></tr></table>")]
    data = {
        # The quote spans two cells: found in the visible text "資本金 1,000万円" (folded).
        "資本金": {"value": "1000", "source_url": "https://elsewhere.example/", "quote": "資本金　1,000万円"},
        "従業員数": {"value": "12名", "source_url": "https://a.example/", "quote": "社員12名"},
    }
    values, rejected = values_from_answer(data, SPECS, clean=clean, pages=pages, citations=[], subject="株式会社A")
    by_field = {v.field: v for v in values}
    assert (by_field["capital"].confidence, by_field["capital"].extractor) == (GROUNDED_CONFIDENCE, "llm:grounded")
    assert by_field["capital"].source_url == "https://a.example/company/"  # the page that proved it
    assert by_field["employee_count"].confidence == CITED_CONFIDENCE
    assert by_field["employee_count"].source_url == "https://a.example/"  # as the model said: not confirmed
    assert rejected == []
    uncited, _ = values_from_answer({"従業員数": {"value": "12名", "source_url": None, "quote": "社員12名"}},
                                    SPECS, clean=clean, pages=pages, citations=[], subject="株式会社A")
    assert (uncited[0].confidence, uncited[0].extractor) == (UNCITED_CONFIDENCE, "llm:unverified")


def test_invalid_values_are_rejected_with_a_message_and_vague_ones_dropped_silently():
    data = {"資本金": "お問い合わせください", "従業員数": {"value": "非公開"}}
    values, rejected = values_from_answer(data, SPECS, clean=clean, pages=[], citations=["https://c.example/"],
                                          subject="株式会社A")
    assert values == [] and rejected == ["株式会社A 資本金: 数値として読めません: お問い合わせください"]


def test_a_repaired_answer_loses_its_last_item_and_a_non_http_source_is_dropped():
    data = {"従業員数": {"value": "12", "source_url": "javascript:alert(1)", "quote": ""}, "資本金": {"value": "5,0"}}
    values, rejected = values_from_answer(data, SPECS, clean=clean, pages=[], citations=[], subject="株式会社A",
                                          repaired=True)
    assert [(v.field, v.value, v.source_url) for v in values] == [("employee_count", 12, None)]
    assert rejected and "途中で切れていた" in rejected[0]


@pytest.mark.parametrize("needle, found", [("資本金1億円", True), ("1億", False), ("", False)])
def test_grounding_needs_four_characters_of_the_quote_or_the_value(needle, found):
    pages = [page("https://a.example/", "資本金1億円")]
    assert (grounding_page(needle, "", pages) is not None) is found
