"""``hokan documents …``: read a PDF or an image (text layer, OCR) and list the OCR engines.

The CLI root (hokan.cli) sets Django up before these commands run; the reader and the engines
are imported inside the functions, so ``hokan --help`` loads no OCR model.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hokan.core.errors import DocumentError

app = typer.Typer(help="PDF・画像の文字を読み取ります（テキスト層・OCR）。", no_args_is_help=True, add_completion=False)

METHOD_JA = {"text_layer": "テキスト層", "ocr": "OCR"}


@app.command("text", help="PDF または画像の文字をページごとに表示します（テキスト層がないページは OCR）。")
def text(
    file: Path = typer.Argument(..., help="PDF または画像（PNG / JPEG / WebP / TIFF / GIF / BMP）のパス"),
    ocr: str = typer.Option("auto", "--ocr", help="auto（テキスト層がないページだけ）/ always / never"),
    engine: str | None = typer.Option(None, "--engine", help="OCR エンジン（ppocrv6 / ppocrv5 / tesseract / tesseract_vert）。既定は HOKAN_OCR_ENGINES"),
    output_format: str = typer.Option("text", "--format", help="出力形式: text、lines（OCR の行と確度）、json"),
    refresh: bool = typer.Option(False, "--refresh", help="キャッシュを使わずに読み直す"),
) -> None:
    from hokan.core.documents import get_engine, read_document

    if ocr not in ("auto", "always", "never"):
        raise typer.BadParameter("auto / always / never のいずれかを指定してください", param_hint="--ocr")
    if output_format not in ("text", "lines", "json"):
        raise typer.BadParameter("text / lines / json のいずれかを指定してください", param_hint="--format")
    console = Console()
    try:
        engines = [get_engine(engine)] if engine else None
        document = read_document(file, ocr=ocr, engines=engines, refresh=refresh)  # type: ignore[arg-type]
    except DocumentError as exc:
        typer.echo(f"読み取れませんでした: {exc}", err=True)
        raise typer.Exit(1) from exc
    if output_format == "json":
        typer.echo(json.dumps({"source": document.source, "from_cache": document.from_cache, **document.to_dict()},
                              ensure_ascii=False, indent=2))  # fmt: skip
        return
    engines_used = "、".join(document.ocr_engines) or "なし"
    console.print(f"[bold]{escape(document.source)}[/bold]  {len(document.pages)} ページ  OCR: {engines_used}"
                  + ("  （キャッシュ）" if document.from_cache else ""), highlight=False, soft_wrap=True)  # fmt: skip
    for page in document.pages:
        console.rule(f"{page.number} ページ（{METHOD_JA[page.method]}）")
        if output_format == "lines" and page.ocr is not None:
            table = Table(show_header=True, header_style="bold")
            for header in ("行", "確度", "位置 (左, 上, 右, 下) px"):
                table.add_column(header, overflow="fold")
            for line in page.ocr.lines:
                table.add_row(escape(line.text), f"{line.confidence:.2f}", ", ".join(str(v) for v in line.bbox))
            console.print(table)
        else:
            console.print(escape(page.text) or "[dim]（文字なし）[/dim]", highlight=False)


@app.command("engines", help="OCR エンジンの一覧と、この環境で使えるかを表示します。")
def engines() -> None:
    from django.conf import settings

    from hokan.core.documents.ocr import ENGINES, get_engine
    from hokan.core.errors import OcrUnavailable

    table = Table(title=f"OCR エンジン（HOKAN_OCR_ENGINES={','.join(settings.HOKAN_OCR_ENGINES)}）")
    for header in ("名前", "順位", "状態"):
        table.add_column(header, overflow="fold")
    for name in ENGINES:
        order = settings.HOKAN_OCR_ENGINES.index(name) + 1 if name in settings.HOKAN_OCR_ENGINES else "-"
        try:
            state = get_engine(name).describe()["version"]
        except OcrUnavailable as exc:
            state = f"[red]使えません[/red]: {escape(str(exc))}"
        table.add_row(name, str(order), state)
    Console().print(table)
