"""``hokan knowledge``: the knowledge app's commands (issue 12 §7).

    hokan knowledge store FILE.json [FILE.json …] [--no-index]   store analysis JSONs
    hokan knowledge search QUERY [--platform --liver --since --until --limit --mode --format]
    hokan knowledge context QUERY [--liver --platform]           the RAG block for the analysis LLM
    hokan knowledge stats                                        totals from the database
    hokan knowledge feedback VIDEO_ID RATING [--comment --phase]
    hokan knowledge reindex [--recreate]                         rebuild Qdrant from the database
    hokan knowledge snapshot create [--kind jsonl|native] | list | restore NAME --yes

Exit codes: 0 done; 1 some input was refused (each file/problem named, the others stored);
2 a configuration or store problem (Qdrant folder held by another process, bad setting) —
one Japanese line, never a traceback (``hokan.cli``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="ライブコマース知識ベース（設計書001）: 分析の保存・検索・売上の読み取り。", no_args_is_help=True, add_completion=False)
snapshot_app = typer.Typer(help="Qdrantコレクションのバックアップ（作成・一覧・復元）。", no_args_is_help=True, add_completion=False)
app.add_typer(snapshot_app, name="snapshot")
console = Console()
err_console = Console(stderr=True)

MAX_FILE_BYTES = 20 * 1024 * 1024
PLATFORM_LABELS = {"tiktok": "TikTok", "instagram": "Instagram", "youtube": "YouTube", "rakuten": "楽天",
                   "yahoo": "Yahoo!", "line": "LINE", "other": "その他"}


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=False)


def _yen(value: Optional[int]) -> str:
    return f"¥{value:,}" if value is not None else "—"


def _date(value: Optional[str]) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        err_console.print(f"[red]日付は YYYY-MM-DD で指定してください:[/red] {escape(value)}")
        raise typer.Exit(1) from None


def read_analysis_file(path: Path) -> list[dict]:
    """The analyses in ``path``: one JSON object, or a list of them.

    Raises:
        AnalysisInvalid: unreadable, too large, not JSON (line and column named), not objects.
    """
    from hokan.knowledge.errors import AnalysisInvalid

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AnalysisInvalid([("$", f"ファイルが大きすぎます（{size:,} バイト、上限 {MAX_FILE_BYTES:,}）")],
                                  source=str(path))
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise AnalysisInvalid([("$", f"読み込めません: {exc.strerror or exc}")], source=str(path)) from None
    except UnicodeDecodeError:
        raise AnalysisInvalid([("$", "UTF-8 のテキストではありません")], source=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalysisInvalid([(f"{exc.lineno}行{exc.colno}列", f"JSONとして読めません（{exc.msg}）")],
                              source=str(path)) from None
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(item, dict) for item in items):
        raise AnalysisInvalid([("$", "分析JSONのオブジェクト（またはその配列）が必要です")], source=str(path))
    return items


@app.command("store", help="分析JSON（1件のオブジェクトまたは配列）を検証して保存し、Qdrantに索引します。")
def store_command(
    files: list[Path] = typer.Argument(..., help="分析JSONファイル"),
    no_index: bool = typer.Option(False, "--no-index", help="データベースにだけ保存する（後で reindex）"),
) -> None:
    from hokan.knowledge.errors import AnalysisInvalid
    from hokan.knowledge.service import store_analysis

    refused = 0
    stored = 0
    for path in files:
        try:
            items = read_analysis_file(path)
        except AnalysisInvalid as exc:
            refused += 1
            _print_invalid(exc)
            continue
        for n, item in enumerate(items):
            source = f"{path}" if len(items) == 1 else f"{path}[{n}]"
            try:
                analysis = store_analysis(item, source=source, index=not no_index)
            except AnalysisInvalid as exc:
                refused += 1
                _print_invalid(exc)
                continue
            stored += 1
            state = "新規" if analysis.created else ("更新" if analysis.changed else "変更なし")
            indexed = ("未索引" if no_index or analysis.index_error else "索引済み")
            console.print(f"[green]✓[/green] {escape(analysis.video_id)}（{state}、版 {analysis.revision}、"
                          f"フェーズ {analysis.phases.count()}件、{indexed}）")
            if analysis.index_error:
                err_console.print(f"  [yellow]![/yellow] {escape(analysis.index_error)}")
    console.print(f"保存 {stored}件、不正 {refused}件")
    if refused:
        raise typer.Exit(1)


def _print_invalid(exc) -> None:
    err_console.print(f"[red]✗ {escape(exc.source or '入力')}: 保存しませんでした[/red]")
    for path, reason in exc.problems[:50]:
        err_console.print(f"  {escape(path)}: {escape(reason)}")
    if len(exc.problems) > 50:
        err_console.print(f"  …ほか {len(exc.problems) - 50}件")


@app.command("search", help="過去の分析から類似フェーズを検索します（日本語ハイブリッド検索）。")
def search_command(
    query: str = typer.Argument(..., help="検索語（例: 「保湿クリーム 3,980円 限定」）"),
    platform: Optional[str] = typer.Option(None, "--platform", help="tiktok, instagram, youtube, rakuten, …"),
    liver: Optional[str] = typer.Option(None, "--liver", help="ライバー名"),
    since: Optional[str] = typer.Option(None, "--since", help="この配信日以降（YYYY-MM-DD）"),
    until: Optional[str] = typer.Option(None, "--until", help="この配信日まで（YYYY-MM-DD）"),
    limit: int = typer.Option(10, "--limit", min=1, max=100, help="件数"),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid（既定）/ dense / sparse"),
    output: str = typer.Option("table", "--format", help="table / json"),
) -> None:
    from hokan.knowledge.knowledge_retriever import KnowledgeRetriever

    if mode not in ("hybrid", "dense", "sparse"):
        err_console.print(f"[red]--mode は hybrid / dense / sparse のいずれかです:[/red] {escape(mode)}")
        raise typer.Exit(1)
    hits = KnowledgeRetriever().similar_phases(query, platform=platform, liver=liver, since=_date(since),
                                               until=_date(until), limit=limit, mode=mode)  # type: ignore[arg-type]
    if output == "json":
        console.print_json(json.dumps([h.__dict__ for h in hits], ensure_ascii=False))
        return
    if not hits:
        console.print("該当するフェーズはありません。")
        return
    table = Table(title=f"「{escape(query)}」の類似フェーズ", show_lines=False)
    for name, justify in (("#", "right"), ("スコア", "right"), ("配信日", "left"), ("PF", "left"), ("ライバー", "left"),
                          ("動画ID", "left"), ("フェーズ", "right"), ("時間", "left"), ("配信売上", "right"),
                          ("内容", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for n, h in enumerate(hits, 1):
        summary = h.insight or h.speech
        table.add_row(str(n), f"{h.score:.3f}", h.stream_date or "—", PLATFORM_LABELS.get(h.platform, h.platform),
                      escape(h.liver), escape(h.video_id), str(h.phase_index + 1),
                      f"{_clock(h.start_s)}–{_clock(h.end_s)}", _yen(h.gmv_jpy), escape(summary[:60]))
    console.print(table)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@app.command("context", help="分析LLMに渡す参考情報（日本語のコンテキスト）を表示します。")
def context_command(
    query: str = typer.Argument(..., help="分析中の配信の内容（商品名など）"),
    liver: Optional[str] = typer.Option(None, "--liver", help="ライバー名（過去の配信を含める）"),
    platform: Optional[str] = typer.Option(None, "--platform"),
    limit: int = typer.Option(5, "--limit", min=1, max=20),
) -> None:
    from hokan.knowledge.rag_prompt_builder import build_rag_context

    context = build_rag_context(query, liver=liver, platform=platform, limit=limit)
    typer.echo(context.text)  # plain: no wrapping, the block goes to an LLM or a file as it is
    if context.filtered:
        err_console.print(f"[yellow]注意:[/yellow] 指示の書き換えを試みる文 {context.filtered}件を [FILTERED] にしました")


@app.command("stats", help="統計（総売上・ライバー数・配信数・配信あたり平均売上）をデータベースから計算します。")
def stats_command(output: str = typer.Option("table", "--format", help="table / json")) -> None:
    from hokan.knowledge.api import stream_stats
    from hokan.knowledge.models import Phase

    stats = stream_stats()
    if output == "json":
        console.print_json(json.dumps(stats, ensure_ascii=False))
        return
    table = Table(title="ナレッジベースの統計")
    table.add_column("項目")
    table.add_column("値", justify="right")
    table.add_row("配信数 (streams)", f"{stats['streams']:,}")
    table.add_row("売上の分かる配信数", f"{stats['streams_with_gmv']:,}")
    table.add_row("ライバー数 (total_livers)", f"{stats['total_livers']:,}")
    table.add_row("総売上 (total_gmv)", _yen(stats["total_gmv"]))
    table.add_row("配信あたり平均売上 (avg_gmv_per_stream)", _yen(stats["avg_gmv_per_stream"]))
    table.add_row("フェーズ数", f"{Phase.objects.count():,}")
    console.print(table)


@app.command("feedback", help="分析を評価します（1〜5）。品質スコアは評価の平均です。")
def feedback_command(
    video_id: str = typer.Argument(..., help="動画ID"),
    rating: int = typer.Argument(..., help="評価 1〜5"),
    comment: str = typer.Option("", "--comment", help="コメント"),
    phase: Optional[int] = typer.Option(None, "--phase", help="評価するフェーズ番号（0始まり）"),
) -> None:
    from hokan.knowledge.errors import AnalysisInvalid
    from hokan.knowledge.feedback import rate
    from hokan.knowledge.models import VideoAnalysis

    try:
        rate(video_id, rating, comment=comment, phase_index=phase, source="cli")
    except VideoAnalysis.DoesNotExist:
        err_console.print(f"[red]動画ID {escape(video_id)} の分析はありません[/red]")
        raise typer.Exit(1) from None
    except AnalysisInvalid as exc:
        _print_invalid(exc)
        raise typer.Exit(1) from None
    analysis = VideoAnalysis.objects.get(video_id=video_id)
    console.print(f"評価を記録しました: {escape(video_id)} 品質スコア {analysis.quality_score}（{analysis.rating_count}件）")


@app.command("reindex", help="データベースの分析からQdrantの索引を作り直します。")
def reindex_command(
    recreate: bool = typer.Option(False, "--recreate", help="コレクションを削除してから作る（埋め込みモデルを変えたとき）"),
) -> None:
    from hokan.knowledge.models import VideoAnalysis
    from hokan.knowledge.store import KnowledgeIndex, reindex

    total = VideoAnalysis.objects.count()
    with _progress() as progress:
        task = progress.add_task("索引中", total=total)
        written = reindex(recreate=recreate, progress=lambda done, all_: progress.update(task, completed=done),
                          index=KnowledgeIndex())
    console.print(f"索引しました: 動画 {total:,}件、フェーズ {written:,}件")


@snapshot_app.command("create", help="スナップショットを作成します（ローカルモード: JSONL、サーバー: Qdrantのスナップショット）。")
def snapshot_create(kind: Optional[str] = typer.Option(None, "--kind", help="jsonl / native（既定: モードに応じて）")) -> None:
    from hokan.knowledge import snapshot

    info = snapshot.create(kind=kind)
    where = f" → {info.path}" if info.path else ""
    points = f"、{info.points:,}点" if info.points is not None else ""
    console.print(f"作成しました: {escape(info.name)}（{info.kind}{points}、{info.size_bytes:,} バイト）{escape(where)}")


@snapshot_app.command("list", help="スナップショットの一覧（新しい順）。")
def snapshot_list() -> None:
    from hokan.knowledge import snapshot

    items = snapshot.list_snapshots()
    if not items:
        console.print("スナップショットはまだありません。")
        return
    table = Table(title="スナップショット")
    table.add_column("名前", overflow="fold")  # never cut: it is what restore takes
    for name in ("形式", "作成日時 (UTC)", "サイズ"):
        table.add_column(name, no_wrap=True)
    for s in items:
        table.add_row(escape(s.name), s.kind, s.created_at.strftime("%Y-%m-%d %H:%M:%S") if s.created_at else "—",
                      f"{s.size_bytes:,}")
    console.print(table)


@snapshot_app.command("restore", help="スナップショットからコレクションを復元します（現在の索引は置き換えられます）。")
def snapshot_restore(
    name: str = typer.Argument(..., help="snapshot list の名前、またはファイルのパス"),
    yes: bool = typer.Option(False, "--yes", help="確認なしで置き換える"),
) -> None:
    from hokan.knowledge import snapshot

    if not yes and not typer.confirm(f"{name} で現在の索引を置き換えます。よろしいですか？"):
        raise typer.Exit(1)
    restored = snapshot.restore(name)
    shown = "（サーバーで復元）" if restored < 0 else f"{restored:,}点"
    console.print(f"復元しました: {escape(name)} {shown}。索引がデータベースと異なるときは hokan knowledge reindex で揃えられます。")
from hokan.knowledge import ingest_command  # noqa: E402,F401  (registers ocr, screen, backfill: K2)
