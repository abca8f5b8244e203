"""Reading what an analyst brings (issue 11 §1): CSV in UTF-8 / BOM / CP932, XLSX, a 5 MB cell,
categories from JSON / YAML / CSV, the system prompt; the output file's shape."""

from __future__ import annotations

import codecs
import csv
import json

import openpyxl
import pytest

from hokan.core.errors import InputError
from hokan.scoring.config import DEFAULT_PROMPT, Categories, Category, RunConfig, load_categories, load_system_prompt
from hokan.scoring.io import STATUS_HEADER, FileSink, FileSource, utterances
from hokan.scoring.questions import build_request, check_part, masked, parts_by_id

ROWS = [["ID", "発話"], ["a1", "返品の手続きが分かりにくい"], ["a2", "スタッフの対応が丁寧でした"]]


def write(path, rows, encoding):
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_csv_in_utf8_with_bom_and_cp932_reads_the_same_rows(tmp_path, encoding):
    table = FileSource(write(tmp_path / "in.csv", ROWS, encoding)).read()
    assert table.headers == ["ID", "発話"]  # no BOM left on the first header
    rows = utterances(table, text_column="発話", id_column="ID")
    assert [(u.index, u.row_number, u.row_id, u.text) for u in rows] == [
        (0, 2, "a1", "返品の手続きが分かりにくい"), (1, 3, "a2", "スタッフの対応が丁寧でした")]
    if encoding == "utf-8-sig":
        assert (tmp_path / "in.csv").read_bytes().startswith(codecs.BOM_UTF8)


def test_xlsx_input_and_a_5_mb_cell(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    for row in ROWS:
        sheet.append(row)
    book.save(tmp_path / "in.xlsx")
    assert [u.text for u in utterances(FileSource(tmp_path / "in.xlsx").read(), text_column="発話")] == \
        ["返品の手続きが分かりにくい", "スタッフの対応が丁寧でした"]
    huge = "通話記録。" * 1_000_000  # 5,000,000 characters in one cell
    table = FileSource(write(tmp_path / "big.csv", [["発話"], [huge], ["短い発話"]], "utf-8")).read()
    rows = utterances(table, text_column="発話")
    assert len(rows[0].text) == 5_000_000 and rows[1].text == "短い発話"


def test_a_missing_column_names_the_headers_and_the_file(tmp_path):
    source = FileSource(write(tmp_path / "in.csv", ROWS, "utf-8"))
    with pytest.raises(InputError) as error:
        utterances(source.read(), text_column="コメント", source=source.label)
    assert "in.csv" in str(error.value) and "「コメント」" in str(error.value) and "ID、発話" in str(error.value)
    with pytest.raises(InputError, match="見つかりません"):
        FileSource(tmp_path / "nothing.csv").read()


def test_categories_from_json_yaml_and_csv(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"categories": [{"name": "不満", "description": "苦情"}]},
                                                ensure_ascii=False), encoding="utf-8")
    (tmp_path / "c.yaml").write_text("- name: 不満\n  description: 苦情\n- name: 要望\n  description: 改善の要望\n",
                                     encoding="utf-8")
    write(tmp_path / "c.csv", [["名前", "説明"], ["不満", "苦情"], ["要望", "改善の要望"]], "cp932")
    assert load_categories(tmp_path / "c.json").items == (Category("不満", "苦情"),)
    assert load_categories(tmp_path / "c.yaml").names == ["不満", "要望"]
    assert load_categories(tmp_path / "c.csv").names == ["不満", "要望"]
    twelve = Categories(tuple(Category(f"c{i}", "d") for i in range(12)), per_call=10)
    assert [len(b) for b in twelve.blocks] == [10, 2]  # at most 10 categories per call


@pytest.mark.parametrize("content, message", [
    ('[{"name": "不満"}]', "説明（description）がありません"),
    ('[{"name": "不満", "description": "a"}, {"name": "不満", "description": "b"}]', "重複"),
    ("[]", "1つもありません"),
    ('{"name": ', "JSON として読めません"),
])
def test_bad_categories_are_refused_with_the_reason(tmp_path, content, message):
    (tmp_path / "c.json").write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_categories(tmp_path / "c.json")


def test_the_system_prompt_is_the_packaged_japanese_one_or_a_file(tmp_path):
    assert "採点" in load_system_prompt() and DEFAULT_PROMPT.is_file()
    (tmp_path / "p.txt").write_text("独自のプロンプト\n", encoding="utf-8")
    assert load_system_prompt(tmp_path / "p.txt") == "独自のプロンプト"
    (tmp_path / "empty.txt").write_text(" \n", encoding="utf-8")
    with pytest.raises(InputError, match="空です"):
        load_system_prompt(tmp_path / "empty.txt")


def test_run_config_refuses_values_out_of_range():
    with pytest.raises(InputError, match="categories_per_call"):
        RunConfig(categories_per_call=11)
    with pytest.raises(InputError, match="scale"):
        RunConfig(scale="1-10")
    assert RunConfig().chunk_row_limit == 500 and RunConfig().flush_interval == 2.0
    assert RunConfig().flush_batch_size == 50 and RunConfig().cache_ttl_s == 86_400


def test_each_part_of_an_answer_is_checked_on_its_own():
    cats = [Category("不満", "苦情"), Category("要望", "要望")]
    parts = parts_by_id({"results": [{"id": "1", "scores": {"不満": "0.8", "要望": 0.1}},
                                     {"id": "2", "scores": {"不満": 1.2, "要望": 0.1}},
                                     {"id": "3", "scores": {"不満": 0.5}},
                                     {"id": "4", "scores": {"不満": 0.5, "要望": 0.5, "他": 1}}]})
    assert check_part(parts["1"], cats, "0-1") == ({"不満": 0.8, "要望": 0.1}, "")  # "0.8" repaired to 0.8
    for bad in ("2", "3", "4"):
        scores, reason = check_part(parts[bad], cats, "0-1")
        assert scores is None and "スキーマに合いません" in reason
    assert check_part(None, cats, "0-1")[1] == "回答にこの発話の結果がありません"
    assert check_part({"id": "1", "scores": {"不満": 4.0, "要望": "５"}}, cats, "1-5")[0] == {"不満": 4.0, "要望": 5.0}
    assert check_part({"id": "1", "scores": {"不満": 4.5, "要望": 2}}, cats, "1-5")[0] is None  # not an integer
    assert parts_by_id({"results": [{"id": "1"}, {"id": "1"}]}) == {}  # an id twice: neither is trusted


def test_personal_data_is_masked_before_it_is_sent():
    request = build_request([masked("山田様の電話は 03-1234-5678、mail: taro@example.co.jp")],
                            [Category("不満", "苦情")], system_prompt="p", config=RunConfig())
    assert "03-1234-5678" not in request.user and "taro@example.co.jp" not in request.user
    assert "[PHONE]" in request.user and "[EMAIL]" in request.user


def test_the_output_file_is_the_input_with_a_column_per_category_and_a_status(tmp_path):
    table = FileSource(write(tmp_path / "in.csv", ROWS + [["a3", "x" * 40_000]], "utf-8")).read()
    grid = {0: {"不満": (0.81234, ""), "要望": (0.1, "")}, 1: {"不満": (None, "回答が不正です"), "要望": (0.2, "")}}
    for suffix in (".csv", ".xlsx"):
        sink = FileSink(tmp_path / f"out{suffix}", table, ["不満", "要望"], "0-1", lambda: grid)
        sink.close()
    with (tmp_path / "out.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ID", "発話", "不満", "要望", STATUS_HEADER]
    assert rows[1][2:] == ["0.812", "0.1", "完了"]
    assert rows[2][2:4] == ["", "0.2"] and rows[2][4] == "エラー（不満: 回答が不正です）"
    assert rows[3][4] == "未処理"
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx", read_only=True).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert values[1][2] == 0.812 and values[3][4] == "未処理" and len(values[3][1]) <= 32_767
    with pytest.raises(InputError, match=".csv か .xlsx"):
        FileSink(tmp_path / "out.txt", table, ["不満"], "0-1", lambda: {})
