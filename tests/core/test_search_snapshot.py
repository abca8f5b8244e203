"""The snapshot search index (hokan.core.search.snapshot): BM25 over saved pages, real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from hokan.core.errors import SearchConfigError, SearchFailed
from hokan.core.search import FallbackSearch, SnapshotIndex, SnapshotSearch, SnapshotSource, markdown_urls
from hokan.core.search.snapshot import tokenize

OTOINEPPU = "https://www.vill.otoineppu.hokkaido.jp/"


@pytest.fixture(scope="module")
def index(shared_data: Path) -> SnapshotIndex:
    return SnapshotIndex.from_sources([
        SnapshotSource(shared_data / "municipal" / "otoineppu_pages_md", OTOINEPPU),
        SnapshotSource(shared_data / "municipal" / "service_pages"),
    ])


def test_tokens_fold_full_width_and_make_bigrams() -> None:
    assert tokenize("国民健康保険 ＰＤＦ") == ["国民", "民健", "健康", "康保", "保険", "pdf"]
    assert tokenize("課") == ["課"]


def test_markdown_files_are_named_after_their_path(shared_data: Path) -> None:
    urls = dict((u, p.relative_to(shared_data / "municipal" / "otoineppu_pages_md").as_posix())
                for u, p in markdown_urls(shared_data / "municipal" / "otoineppu_pages_md", OTOINEPPU))
    assert urls[OTOINEPPU + "kakuka/syoubou/"] == "kakuka/syoubou/index.md"
    assert urls[OTOINEPPU + "kakuka/suitoushitsu/noufu/"] == "kakuka/suitoushitsu/noufu.md"


def test_finds_the_service_page_on_the_official_site(index: SnapshotIndex) -> None:
    results = index.search("消防 電話番号", site="www.vill.otoineppu.hokkaido.jp", count=3)
    assert results[0].url == OTOINEPPU + "kakuka/syoubou/"
    assert results[0].title == "消防支署" and results[0].provider == "snapshot" and results[0].rank == 1
    garbage = index.search("ごみの分け方 出し方 site:vill.otoineppu.hokkaido.jp", count=5)
    assert garbage[0].url == OTOINEPPU + "kurashi/gomi_kankyou/bunbetu/"
    assert [r.rank for r in garbage] == list(range(1, len(garbage) + 1))


def test_html_pages_of_a_snapshot_csv_are_indexed_by_their_listed_url(index: SnapshotIndex) -> None:
    results = index.search("保護猫 譲渡 尾張", count=5)
    assert any(r.url == "https://www.pref.aichi.jp/soshiki/doukan-c/owarineko.html" for r in results)
    assert all("<" not in r.title for r in results)


def test_site_filter_keeps_other_domains_out(index: SnapshotIndex) -> None:
    anywhere = index.search("愛知県動物愛護センター 譲渡", count=5)
    assert any(r.url.startswith("https://www.pref.aichi.jp/") for r in anywhere)
    official = index.search("愛知県動物愛護センター 譲渡", site="www.vill.otoineppu.hokkaido.jp", count=5)
    assert official and all(r.url.startswith(OTOINEPPU) for r in official)
    assert all(r.url.startswith(OTOINEPPU) for r in index.search("村 役場", site="vill.otoineppu.hokkaido.jp"))


def test_nothing_shared_with_the_query_is_zero_results_and_the_chain_says_so(index: SnapshotIndex) -> None:
    chain = FallbackSearch([SnapshotSearch(index=index)])
    with pytest.raises(SearchFailed) as caught:
        chain.run("zzzqqq", count=3)
    assert caught.value.failures == [("snapshot", "0件")]
    assert "snapshot: 0件" in str(caught.value)


def test_a_folder_without_csv_or_base_url_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# 住民課\n電話 01656-5-3311", encoding="utf-8")
    with pytest.raises(SearchConfigError, match="snapshot.csv がありません"):
        SnapshotIndex.from_sources([SnapshotSource(tmp_path)])
    with pytest.raises(SearchConfigError, match="ありません"):
        SnapshotIndex.from_sources([SnapshotSource(tmp_path / "missing", OTOINEPPU)])
    assert SnapshotSource.parse(f"{tmp_path}|https://x.lg.jp/") == SnapshotSource(tmp_path, "https://x.lg.jp/")
    found = SnapshotIndex.from_sources([SnapshotSource(tmp_path, "https://www.town.example.lg.jp/")]).search("住民課")
    assert found[0].url == "https://www.town.example.lg.jp/a/"
