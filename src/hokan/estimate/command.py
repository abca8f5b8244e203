"""``hokan estimate``: the price engine from the command line, the TTL cleanup and the pending follow-ups."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from hokan.core.errors import InputError

app = typer.Typer(help="AI見積もり（設計書004）", no_args_is_help=True, add_completion=False)


def load_answers(path: Path) -> dict:
    """Read ANSWERS.json (step_1…step_12 or "1"…"12", optional step_8_categories); InputError if unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"ファイルを読めません: {exc.strerror}", source=str(path)) from exc
    except ValueError as exc:
        raise InputError(f"JSONとして読めません: {exc}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise InputError("JSONオブジェクト（{...}）を指定してください", source=str(path))
    return data


@app.command("quote", help="回答ファイル（ANSWERS.json）から価格計算エンジンの結果（calculated_data）をJSONで出力します。")
def quote(answers_file: Path = typer.Argument(..., help="step_1〜step_12 を含むJSONファイル")) -> None:
    from hokan.estimate import pricing
    from hokan.estimate.answers import clean_answers
    from hokan.estimate.sanitizer import sanitize

    try:
        answers = load_answers(answers_file)
        categories = answers.pop("step_8_categories", None)
        if categories is not None and not (isinstance(categories, dict)
                                           and all(isinstance(v, str) for v in categories.values())):
            raise InputError("step_8_categories は {機能の値: カテゴリ名} のオブジェクトで指定してください",
                             source=str(answers_file), field="step_8_categories")
        cleaned = clean_answers(answers)
    except InputError as exc:
        where = f"{answers_file}: " if not exc.source else ""
        typer.echo(f"エラー: {where}{exc}", err=True)
        raise typer.Exit(2) from None
    user_input = sanitize(cleaned, categories)
    typer.echo(json.dumps(pricing.calculate(user_input), ensure_ascii=False, indent=2))


@app.command("cleanup", help="保持期間（DATA_TTL_DAYS）を過ぎたセッションと見積もりを削除します。")
def cleanup() -> None:
    from hokan.estimate.cleanup import delete_expired

    sessions, estimates = delete_expired()
    typer.echo(f"削除しました: セッション {sessions} 件、見積もり {estimates} 件")


@app.command("followups", help="未処理の後続処理（お見積書PDF・メール・Notion）を今すぐ実行します（ブローカーなしの運用で cron から、再起動の後など）。")
def followups() -> None:
    import hokan.estimate.followup_jobs  # noqa: F401  (registers the chunk handler)
    from hokan.estimate.drainer import drain
    from hokan.estimate.followup_jobs import pending_followups

    ran = drain(idle_exit_s=0)
    left = pending_followups().count()
    typer.echo(f"後続処理を実行しました: {ran} 件（未完了 {left} 件: 他のプロセスが実行中か、再試行の待ち）")
