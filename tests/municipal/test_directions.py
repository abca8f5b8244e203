"""An application method is a direction to the reader: 「電話または窓口でお問い合わせください」 is
its value, 「詳細はお問い合わせください」 is not (core.fields FieldSpec.directions, ja.is_vague)."""

from __future__ import annotations

import pytest

from hokan.core import ja
from hokan.core.fields import FieldSpec, clean
from hokan.municipal.catalogue import load_catalogue
from hokan.municipal.extraction import checks

METHOD = FieldSpec(name="application_method", label="申請方法", directions=True)
NOTE = FieldSpec(name="note", label="備考")

ANSWERS = ["電話または窓口でお問い合わせください", "申請書を郵送または窓口へ持参してください",
           "マイナポータルから電子申請できます。詳しくはお問い合わせください"]
NON_ANSWERS = ["お問い合わせください", "詳細はお問い合わせください", "要確認", "未定", "ご確認ください", "-"]


@pytest.mark.parametrize("text", ANSWERS)
def test_a_direction_naming_a_means_is_a_value(text):
    assert ja.is_vague(text, directions=True) is False
    assert clean(METHOD, text) == ja.fold(text)
    assert checks.is_vague("application_method", text, directions=True) is False


@pytest.mark.parametrize("text", NON_ANSWERS)
def test_an_ask_us_sentence_naming_no_means_stays_vague(text):
    assert ja.is_vague(text, directions=True) is True
    assert clean(METHOD, text) is None
    assert checks.is_vague("application_method", text, directions=True) is True


def test_other_fields_keep_treating_ask_us_as_no_value():
    assert clean(NOTE, "電話または窓口でお問い合わせください") is None
    assert checks.is_vague("department", "電話または窓口でお問い合わせください") is True


def test_the_catalogue_marks_every_application_method_and_nothing_else():
    catalogue = load_catalogue()
    marked = {v.name for v in (*catalogue.fields, *catalogue.variables) if v.field_spec.directions}
    assert marked and all(name.endswith("application_method") for name in marked)
    assert all(v.field_spec.directions for v in catalogue.variables if v.field == "application_method")
