"""``hokan knowledge ocr`` on the shared real screenshots: every hand-labelled number read
exactly (value and unit), labels named, OCR's extra readings exactly the known ones (issue 12 §2, §8).

Prints found / exact per screenshot (``pytest -s``). Engine: PP-OCRv6, the default (docs/perf/ocr.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hokan.core.ja.text import fold
import typer

from hokan.knowledge.command import app as knowledge_app

LABELS = json.loads((Path(__file__).parent / "data" / "screenshot_labels.json").read_text(encoding="utf-8"))
SHOTS = [name for name in LABELS if not name.startswith("_")]
runner = CliRunner()
app = typer.Typer()  # the knowledge group as ``hokan`` mounts it (a group of one command would collapse)
app.add_typer(knowledge_app, name="knowledge")


@pytest.fixture(scope="module")
def _module_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ocr-data")


@pytest.fixture(autouse=True)
def data_dir(settings, _module_data_dir: Path) -> Path:
    """One data folder for the module: a screenshot read by one test is a cache hit for the next."""
    settings.HOKAN_DATA_DIR = _module_data_dir
    return settings.HOKAN_DATA_DIR


def _key(shown: str) -> str:
    return fold(shown).replace(" ", "")


def _units(label: dict) -> list[str]:
    return label["unit"] if isinstance(label["unit"], list) else [label["unit"]]


def score(metrics: list[dict], labels: list[dict]) -> tuple[int, int, list[dict], list[str]]:
    """(found, exact, extras, wrong): a label is found when a metric shows the same text (or the
    same number without its ¥ box), exact when value and unit (and the metric, when labelled) match.
    Labels and metrics are matched in reading order."""
    remaining = list(metrics)
    found = exact = 0
    wrong = []
    for label in labels:
        hit = next((m for m in remaining if _key(m["shown"]) in (_key(label["shown"]), "¥" + _key(label["shown"]))), None)
        if hit is None:
            wrong.append(f"missing {label['shown']}")
            continue
        remaining.remove(hit)
        found += 1
        ok = hit["value"] == label["value"] and type(hit["value"]) is type(label["value"]) and hit["unit"] in _units(label)
        if "metric" in label and hit["metric"] != label["metric"]:
            ok = False
        if ok:
            exact += 1
        else:
            wrong.append(f"{label['shown']}: read {hit['value']!r} {hit['unit']} {hit['metric']}")
    return found, exact, remaining, wrong


@pytest.mark.parametrize("name", SHOTS)
def test_every_number_on_a_shared_screenshot_is_read_exactly(shared_data: Path, name: str):
    result = runner.invoke(app, ["knowledge", "ocr", str(shared_data / "screenshots" / name), "--engine", "ppocrv6"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["text"] and all(m["quote"] and 0 <= m["confidence"] <= 1 for m in out["metrics"])
    labels = LABELS[name]
    found, exact, extras, wrong = score(out["metrics"], labels["numbers"])
    print(f"\n{name}: found {found}/{len(labels['numbers'])}, exact {exact}/{len(labels['numbers'])}, "
          f"also read {len(extras)}")
    assert wrong == []
    assert sorted((_key(m["shown"]), m["value"], m["unit"]) for m in extras) == sorted(
        (_key(a["shown"]), a["value"], a["unit"]) for a in labels["also_read"])


def test_the_table_format_prints_japanese_headers(shared_data: Path):
    shot = shared_data / "screenshots" / "ec-cube_admin" / "admin_price_notation_4_0_3.png"
    result = runner.invoke(app, ["knowledge", "ocr", str(shot), "--format", "table", "--engine", "ppocrv6"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for text in ("見出し", "お支払い合計", "payment_total", "3060", "円"):
        assert text in result.output


def test_a_file_that_is_no_image_is_refused_in_one_japanese_line(tmp_path: Path):
    bad = tmp_path / "notes.png"
    bad.write_text("これは画像ではありません", encoding="utf-8")
    result = runner.invoke(app, ["knowledge", "ocr", str(bad), "--engine", "ppocrv6"])
    assert result.exit_code == 1
    assert "読み取れませんでした" in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["knowledge", "ocr", str(tmp_path / "missing.png")])
    assert missing.exit_code == 1 and "読み取れませんでした" in missing.output


def test_a_csv_export_is_read_by_the_same_command(tmp_path: Path):
    export = tmp_path / "tiktok_export.csv"
    export.write_bytes("配信日,総売上(円),注文数,視聴者数,いいね\n2026/11/30,\"1,234,567\",321,1.2万,abc\n".encode("cp932"))
    result = runner.invoke(app, ["knowledge", "ocr", str(export)])
    assert result.exit_code == 0, result.output
    metrics = {m["metric"]: (m["value"], m["unit"], m["source"]) for m in json.loads(result.output)["metrics"] if m["metric"]}
    assert metrics == {"gmv": (1234567, "JPY", "csv"), "orders": (321, "count", "csv"), "viewers": (12000, "count", "csv")}
    table = runner.invoke(app, ["knowledge", "ocr", str(export), "--format", "table"], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "スキップ" in table.output and "いいね" in table.output  # abc is no number
