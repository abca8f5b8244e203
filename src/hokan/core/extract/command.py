"""``hokan extract …``: run the rule extractors on one page, or score them on labelled pages.

The CLI root (hokan.cli) sets Django up before these commands run; settings and the fetcher
are imported inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hokan.core.errors import FetchError

app = typer.Typer(help="ページから会社情報を抽出します。", no_args_is_help=True, add_completion=False)

FIELD_NAMES_JA: dict[str, str] = {
    "name": "会社名",
    "corporate_number": "法人番号",
    "business_description": "事業概要",
    "prefecture": "都道府県",
    "city": "市区町村",
    "location": "所在地（町名以降）",
    "postal_code": "郵便番号",
    "employee_count": "従業員数",
    "revenue": "売上高（円）",
    "capital": "資本金（円）",
    "established_year": "設立年",
    "founded_year": "創業年",
    "phone": "電話番号",
    "contact_email": "メール",
    "website_url": "公式サイト",
    "facebook_url": "Facebook",
    "representative_name": "代表者名",
    "representative_title": "代表者役職",
}


def _read_page(source: str, url: str | None) -> tuple[str, str | None]:
    """(html, url) of a local file or of a URL fetched with the configured fetcher."""
    from hokan.core.web import decode_html

    path = Path(source)
    if path.is_file():
        html, _ = decode_html(path.read_bytes(), None)
        return html, url
    if source.startswith(("http://", "https://")):
        from hokan.core.web.fetch import fetcher_from_settings

        page = fetcher_from_settings().fetch(source)
        return page.text, url or page.final_url
    raise typer.BadParameter(f"ファイルが見つかりません: {source}", param_hint="PATH_OR_URL")


@app.command("page", help="1 ページ（ファイルまたは URL）から会社情報を抽出して表示します。")
def page(
    path_or_url: str = typer.Argument(..., metavar="PATH_OR_URL", help="HTML ファイルのパス、または URL"),
    url: str | None = typer.Option(None, "--url", help="ファイルの取得元 URL（根拠として記録）"),
    output_format: str = typer.Option("table", "--format", help="出力形式: json または table"),
) -> None:
    from hokan.core.extract.rules import extract_profile

    if output_format not in ("json", "table"):
        raise typer.BadParameter("json または table を指定してください", param_hint="--format")
    try:
        html, source_url = _read_page(path_or_url, url)
    except FetchError as exc:
        typer.echo(f"取得できませんでした: {exc.url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    found = extract_profile(html, url=source_url)
    if output_format == "json":
        data = {name: value.as_dict() for name, value in found.items()}
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"抽出結果: {source_url or path_or_url}")
    for header in ("項目", "値", "根拠", "確度"):
        table.add_column(header, overflow="fold")
    for name, value in found.items():
        table.add_row(FIELD_NAMES_JA.get(name, name), str(value.value), value.quote, f"{value.confidence:.2f}")
    console = Console()
    console.print(table)
    if not found:
        console.print("項目は見つかりませんでした。")


@app.command("evaluate", help="正解付きページで抽出の適合率・再現率を項目ごとに表示します。")
def evaluate_command(
    folder: Path | None = typer.Argument(None, help="labels.json のあるフォルダ（既定: $HOKAN_SHARED_DATA/company_pages）"),
    mismatches: bool = typer.Option(False, "--mismatches", help="不一致の一覧も表示します"),
) -> None:
    from hokan.core.extract.evaluate import evaluate

    if folder is None:
        from django.conf import settings

        folder = Path(settings.HOKAN_SHARED_DATA) / "company_pages"
    if not (folder / "labels.json").is_file():
        typer.echo(f"labels.json が見つかりません: {folder}", err=True)
        raise typer.Exit(1)
    report = evaluate(folder)
    table = Table(title=f"ルール抽出の評価（{report.pages} ページ）")
    for header in ("項目", "正解 TP", "誤り FP", "見逃し FN", "適合率", "再現率"):
        table.add_column(header, justify="right" if header != "項目" else "left")
    for name, tp, fp, fn, precision, recall in report.rows():
        table.add_row(
            name, str(tp), str(fp), str(fn),
            "-" if precision is None else f"{precision:.3f}",
            "-" if recall is None else f"{recall:.3f}",
        )  # fmt: skip
    console = Console()
    console.print(table)
    if mismatches:
        for m in report.mismatches:
            console.print(f"{m.file} {m.field}: 正解={m.expected!r} 抽出={m.got!r}")
