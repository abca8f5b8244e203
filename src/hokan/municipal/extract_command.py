"""``hokan municipal extract`` and ``hokan municipal evaluate`` (issue 10 §6, §7).

``extract PATH_OR_URL`` runs the extraction of one page — the rules, then the LLM of the
municipal profile for what is still missing when one is configured — and prints
``{variable: {value, raw, quote, source_url, method, confidence}}`` for the variables found.
A file may be HTML, a PDF or an image (``core.documents``: text layer, OCR); a URL is fetched
through ``core.web`` (SSRF guard at connect time, robots.txt, size cap, charset detection).

``evaluate`` scores the rules (no LLM) on the labelled pages of
``$HOKAN_SHARED_DATA/municipal/service_pages``, per variable, on the fit pages, the held-out
pages and all pages (``hokan.municipal.extraction.evaluate``).

The CLI root (hokan.cli) sets Django up before these commands run.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hokan.core.errors import DocumentError, FetchError, HokanError

# Merged into the ``hokan municipal`` group (``app.add_typer(app)`` without a name, in command.py).
app = typer.Typer(add_completion=False)

PRINTED_KEYS = ("value", "raw", "quote", "source_url", "method", "confidence")
_DOCUMENT_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".bmp")


def _read_source(source: str, url: str | None) -> tuple[str | None, str | None, str | None]:
    """(html, text, source_url) of a local file or a URL. Raises typer.BadParameter for a missing file."""
    from hokan.core.web import decode_html

    path = Path(source)
    if path.is_file():
        if path.suffix.lower() in _DOCUMENT_SUFFIXES:
            from hokan.core.documents import read_document

            document = read_document(path)
            return None, "\n".join(page.text for page in document.pages), url
        html, _ = decode_html(path.read_bytes(), None)
        return html, None, url
    if source.startswith(("http://", "https://")):
        from hokan.core.web.fetch import fetcher_from_settings

        page = fetcher_from_settings().fetch(source)
        if not page.text and page.content:
            from hokan.core.documents import read_document

            document = read_document(page.content, name=page.final_url)
            return None, "\n".join(p.text for p in document.pages), url or page.final_url
        return page.text, None, url or page.final_url
    raise typer.BadParameter(f"ファイルが見つかりません: {source}", param_hint="PATH_OR_URL")


@app.command("extract", help="1 ページから自治体サービスの情報を抽出します（ルール → 未取得分だけ AI）。")
def extract(
    path_or_url: str = typer.Argument(..., metavar="PATH_OR_URL", help="HTML・PDF・画像ファイルのパス、または URL"),
    url: str | None = typer.Option(None, "--url", help="ファイルの取得元 URL（根拠として記録し、公式ドメインの判定に使います）"),
    variables: str | None = typer.Option(
        None, "--variables", help="抽出する変数（カンマ区切り。既定: 設計書003 §3 の変数。カタログの変数名も指定可）"
    ),
    output_format: str = typer.Option("json", "--format", help="出力形式: json または table"),
    no_llm: bool = typer.Option(False, "--no-llm", help="ルール抽出のみ（AI は使いません）"),
) -> None:
    """1 ページから自治体サービスの情報を抽出します（ルール → 未取得分だけ AI）。"""
    from hokan.municipal.extraction import extract_page_detailed, municipal_llm, resolve_variables

    if output_format not in ("json", "table"):
        raise typer.BadParameter("json または table を指定してください", param_hint="--format")
    names = [name.strip() for name in variables.split(",") if name.strip()] if variables else None
    try:
        specs = resolve_variables(names)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--variables") from exc
    try:
        html, text, source_url = _read_source(path_or_url, url)
    except FetchError as exc:
        typer.echo(f"取得できませんでした: {exc.url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    except DocumentError as exc:
        typer.echo(f"文書を読めませんでした: {path_or_url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        llm = None if no_llm else municipal_llm()
    except HokanError as exc:
        typer.echo(f"AI の設定に問題があるため、ルール抽出のみ行います: {exc}", err=True)
        llm = None
    result = extract_page_detailed(text, html=html, url=source_url, variables=specs, llm=llm)
    for message in result.errors:
        typer.echo(f"注意: {message}", err=True)
    if output_format == "json":
        data = {}
        for name, value in result.values.items():
            full = value.as_dict()
            data[name] = {key: full[key] for key in PRINTED_KEYS}
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    labels = {spec.name: spec.label for spec in specs}
    table = Table(title=f"抽出結果: {source_url or path_or_url}")
    for header in ("変数", "値", "根拠（引用）", "方法", "確度"):
        table.add_column(header, overflow="fold")
    for name, value in result.values.items():
        shown = "はい" if value.value is True else "いいえ" if value.value is False else str(value.value)
        table.add_row(f"{labels.get(name, name)}\n{name}", shown, value.quote, "ルール" if value.method == "rule" else "AI",
                      f"{value.confidence:.2f}")
    console = Console()
    console.print(table)
    if result.missing:
        console.print("未取得: " + "、".join(result.missing))


@app.command("evaluate", help="正解付きページでルール抽出の適合率・再現率を変数ごとに表示します（調整用・未使用・全体）。")
def evaluate(
    folder: Path | None = typer.Argument(
        None, help="labels.json のあるフォルダ（既定: $HOKAN_SHARED_DATA/municipal/service_pages）"
    ),
    mismatches: bool = typer.Option(False, "--mismatches", help="不一致の一覧も表示します"),
    output_format: str = typer.Option("table", "--format", help="出力形式: json または table"),
) -> None:
    """正解付きの自治体ページでルール抽出の適合率・再現率を変数ごとに表示します（調整用・未使用・全体）。"""
    from hokan.municipal.extraction.evaluate import HELD_OUT, SPLITS, evaluate as run

    if folder is None:
        from django.conf import settings

        folder = Path(settings.HOKAN_SHARED_DATA) / "municipal" / "service_pages"
    if not (folder / "labels.json").is_file():
        typer.echo(f"labels.json が見つかりません: {folder}", err=True)
        raise typer.Exit(1)
    reports = {split: run(folder, split=split) for split in SPLITS}
    if output_format == "json":
        data = {
            split: {
                "pages": report.pages,
                "variables": {name: {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r}
                              for name, tp, fp, fn, p, r in report.rows()},
            }
            for split, report in reports.items()
        }  # fmt: skip
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    titles = {"fit": "調整に使ったページ", "held_out": "調整に使っていないページ（" + "、".join(sorted(HELD_OUT)) + "）",
              "all": "全ページ"}  # fmt: skip
    console = Console()
    for split in ("fit", "held_out", "all"):
        report = reports[split]
        table = Table(title=f"ルール抽出の評価: {titles[split]}（{report.pages} ページ）")
        for header in ("変数", "正解 TP", "誤り FP", "見逃し FN", "適合率", "再現率"):
            table.add_column(header, justify="left" if header == "変数" else "right")
        for name, tp, fp, fn, precision, recall in report.rows():
            table.add_row(name, str(tp), str(fp), str(fn), "-" if precision is None else f"{precision:.3f}",
                          "-" if recall is None else f"{recall:.3f}")
        console.print(table)
    if mismatches:
        for m in reports["all"].mismatches:
            console.print(f"{m.file} {m.field}: 正解={m.expected!r} 抽出={m.got!r}")
