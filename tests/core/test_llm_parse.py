"""extract_json_object: plain, fenced, prose-wrapped, truncated and unusable answers."""

from __future__ import annotations

from hokan.core.llm import extract_json_object


def test_it_reads_plain_json():
    parsed = extract_json_object('{"設立年": "2001", "従業員数": 45}')
    assert parsed is not None
    assert parsed.data == {"設立年": "2001", "従業員数": 45}
    assert parsed.repaired is False


def test_it_reads_json_in_a_code_fence():
    parsed = extract_json_object('以下です。\n```json\n{"所在地": "東京都港区"}\n```\n')
    assert parsed is not None
    assert parsed.data == {"所在地": "東京都港区"}
    assert parsed.repaired is False


def test_it_reads_json_wrapped_in_prose():
    parsed = extract_json_object('はい。結果: {"資本金": "1億円", "設立年": null} 参考になれば幸いです。')
    assert parsed is not None
    assert parsed.data == {"資本金": "1億円", "設立年": None}


def test_it_skips_a_think_block():
    parsed = extract_json_object('<think>{"draft": 1} を検討…</think>\n{"設立年": "1999"}')
    assert parsed is not None
    assert parsed.data == {"設立年": "1999"}


def test_it_repairs_truncated_json_and_says_so():
    parsed = extract_json_object('{"設立年": "2001", "所在地": ["東京都", "大阪')
    assert parsed is not None
    assert parsed.data["設立年"] == "2001"
    assert parsed.data["所在地"][0] == "東京都"
    assert parsed.repaired is True


def test_it_repairs_a_truncated_fence():
    parsed = extract_json_object('```json\n{"a": 1, "b": [1, 2')
    assert parsed is not None
    assert parsed.data == {"a": 1, "b": [1, 2]}


def test_it_returns_none_for_answers_without_an_object():
    assert extract_json_object("") is None
    assert extract_json_object("   ") is None
    assert extract_json_object("情報が見つかりませんでした。") is None
    assert extract_json_object("{") is None
    assert extract_json_object("[1, 2, 3]") is None


def test_it_repairs_a_truncated_outer_object_instead_of_returning_an_inner_one():
    text = '{"従業員数": {"value": "120名", "quote": "従業員数 120名"}, "資本金": {"value": "5,0'
    parsed = extract_json_object(text)
    assert parsed is not None and parsed.repaired
    assert parsed.data["従業員数"] == {"value": "120名", "quote": "従業員数 120名"}
    assert set(parsed.data) == {"従業員数", "資本金"}
