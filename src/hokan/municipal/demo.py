"""The municipal part of ``make demo`` (issue 10 §7): the fetch job, offline, on real municipal pages.

``python -m hokan.municipal.demo [--folder DIR]``:

1. builds a snapshot folder (``snapshot.csv`` + files) from ``$HOKAN_SHARED_DATA/municipal``:
   the saved 音威子府村 pages (``otoineppu_pages_md``, Markdown transcribed from the official site,
   served at the URLs ``hokan.core.search.markdown_urls`` gives them under
   https://www.vill.otoineppu.hokkaido.jp/) and the 鯖江市 PDFs (``sabae_pdfs``, from
   code4fukui/opendata_env, オープンデータライセンス by 鯖江市). The PDFs are served at
   ``https://www.city.sabae.fukui.jp/demo-opendata/<file>`` — an address the demo gives them on the
   city's domain, not a page of the city's site;
2. imports the municipalities (localgovjp) and the catalogue;
3. runs the job (core.jobs, one chunk per service) with the ``SnapshotFetcher`` over that folder
   and the snapshot BM25 index (``hokan.core.search.SnapshotIndex``) over the same pages plus the
   PDFs' text (read by core.documents), no LLM (rules only: $0), no waits between services;
4. prints each draft: every value with its quote and source, and the missing variables.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path
from typing import Any

OTOINEPPU_BASE = "https://www.vill.otoineppu.hokkaido.jp/"
SABAE_BASE = "https://www.city.sabae.fukui.jp/demo-opendata/"
RUNS = (
    ("014702", "otoineppu", ("kokuho", "nenkin", "gomi", "keijidosha", "juminhyo", "kouei")),
    ("182079", "sabae", ("gomi", "sodaigomi")),
)


def build_snapshot(shared: Path, dest: Path) -> Path:
    """Copy the pages and PDFs into ``dest`` and write its snapshot.csv; returns ``dest``."""
    from urllib.parse import quote

    from hokan.core.search import markdown_urls

    municipal = shared / "municipal"
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "otoineppu").mkdir(parents=True)
    (dest / "sabae").mkdir()
    rows = []
    source = municipal / "otoineppu_pages_md"
    for url, path in markdown_urls(source, OTOINEPPU_BASE):
        rel = Path("otoineppu") / path.relative_to(source)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)
        rows.append((url, str(rel), "text/markdown; charset=utf-8"))
    for path in sorted((municipal / "sabae_pdfs").glob("*.pdf")):
        rel = Path("sabae") / path.name
        shutil.copyfile(path, dest / rel)
        rows.append((SABAE_BASE + quote(path.name), str(rel), "application/pdf"))
    with (dest / "snapshot.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "path", "content_type"])
        writer.writerows(rows)
    return dest


def snapshot_index(folder: Path) -> Any:
    """The BM25 index of the folder's text pages plus its PDFs' text (core.documents)."""
    from hokan.core.search import SnapshotIndex, SnapshotSource
    from hokan.core.search.snapshot import IndexedPage, pages_of
    from hokan.core.web.snapshot import SnapshotFetcher
    from hokan.municipal.documents import is_document, read_bytes

    pages = list(pages_of(SnapshotSource(folder)))
    fetcher = SnapshotFetcher(folder)
    for url in fetcher.urls():
        page = fetcher.fetch(url)
        if is_document(page):
            text = read_bytes(url, page.content)[0]
            title = Path(url).name
            pages.append(IndexedPage(url=url, title=title, text=text))
    return SnapshotIndex(pages)


def run_demo(shared: Path, folder: Path, *, out: Any = print) -> list[Any]:
    """Steps 1–4 of the module docstring; returns the drafts."""
    from hokan.core.search import SnapshotSearch
    from hokan.core.web.snapshot import SnapshotFetcher
    from hokan.municipal import flow
    from hokan.municipal.importer import import_municipalities
    from hokan.municipal.models import Draft, Municipality, Service
    from hokan.municipal.seed import sync_catalogue

    build_snapshot(shared, folder)
    import_municipalities(shared / "municipal" / "localgovjp")
    sync_catalogue()
    search = SnapshotSearch(index=snapshot_index(folder))
    fetcher = SnapshotFetcher(folder)

    def context(job: Any, chunk: Any) -> flow.FlowContext:
        # the crawler (§12) with the same snapshot fetcher: offline; it runs only for services with
        # variables still missing and a crawlable (HTML) official page — the saved pages are Markdown
        return flow.FlowContext(fetcher=fetcher, search=search, llm=None, sleep=lambda s: None, notify=False,
                                crawler=flow.CrawlSetup.from_settings())

    drafts = []
    for lgcode, slug, services in RUNS:
        municipality = Municipality.objects.get(lgcode=lgcode)
        if not municipality.slug:
            municipality.slug = slug
            municipality.save(update_fields=["slug"])
        run = flow.start_run(municipality, [Service.objects.get(key=k) for k in services], trigger="demo")
        progress = flow.execute(run, context=context)
        out(f"\n=== {municipality}（{lgcode}）: ジョブ {progress.status}、{progress.done}/{progress.total} サービス"
            f"、LLM呼び出し {progress.totals.get('llm_calls', 0)} 回、ページ {progress.totals.get('pages', 0)} 件"
            f"（うち巡回 {progress.totals.get('crawled_pages', 0)} 件） ===")
        for draft in Draft.objects.filter(municipality=municipality, service__key__in=services).select_related("service"):
            drafts.append(draft)
            out(f"\n[{draft.service.name}]（{draft.service.key}） 取得 {draft.filled_count} / 未取得 {draft.missing_count}")
            for name, item in sorted(draft.variables.items()):
                out(f"  {name} = {item['value']}  （信頼度 {item['confidence']}、{item['method']}）")
                out(f"      引用: 「{' '.join(str(item['quote']).split())[:80]}」")
                out(f"      出典: {item['source_url']}")
            if draft.missing_variables:
                out("  未取得: " + ", ".join(draft.missing_variables))
            methods = [source.get("method", "") for source in draft.sources]
            out(f"  読んだ資料: {len(methods)} 件（PDF・画像: {sum(m in ('text_layer', 'ocr', 'mixed') for m in methods)} 件、"
                f"うち OCR: {sum(m in ('ocr', 'mixed') for m in methods)} 件）")
            for error in draft.errors[:3]:
                out(f"  記録: [{error['step']}] {error['message'][:100]}")
    return drafts


def main() -> None:
    parser = argparse.ArgumentParser(description="自治体サービス情報の取得デモ（オフライン）")
    parser.add_argument("--folder", type=Path, default=None, help="スナップショットを作るフォルダ")
    args = parser.parse_args()
    from hokan.cli import setup_django

    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    folder = args.folder or Path(settings.HOKAN_DATA_DIR) / "municipal_demo" / "snapshot"
    run_demo(Path(settings.HOKAN_SHARED_DATA), folder)


if __name__ == "__main__":
    main()
