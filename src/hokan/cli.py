"""The ``hokan`` command (typer + rich). Japanese help; every subcommand boots Django first.

Sub-command groups live next to the code they drive and are added here:
``hokan extract`` (core.extract.command), ``hokan leads`` (leads.command), ``hokan usage``.
"""

from __future__ import annotations

import os
import sys

import typer

from hokan.core.errors import HokanError


def setup_django() -> None:
    """Configure Django and apply migrations, so that every command works on a fresh data dir."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.HOKAN_DATA_DIR.mkdir(parents=True, exist_ok=True)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


# typer prints its panel titles and a few notes in English; they are module constants of
# typer.rich_utils, set here to Japanese. ("Usage:" and the --help line are hard-coded in
# typer's vendored click and stay English.)
def _localize_help() -> None:
    from typer import rich_utils

    rich_utils.ARGUMENTS_PANEL_TITLE = "引数"
    rich_utils.OPTIONS_PANEL_TITLE = "オプション"
    rich_utils.COMMANDS_PANEL_TITLE = "コマンド"
    rich_utils.ERRORS_PANEL_TITLE = "エラー"
    rich_utils.DEFAULT_STRING = "[既定: {}]"
    rich_utils.REQUIRED_LONG_STRING = "[必須]"
    rich_utils.ENVVAR_STRING = "[環境変数: {}]"
    rich_utils.ABORTED_TEXT = "中断しました。"
    rich_utils.RICH_HELP = "ヘルプは [blue]'{command_path} {help_option}'[/] で表示できます。"


_localize_help()

app = typer.Typer(
    help="hokan（補完）: 日本の企業データの欠損を、公的データ・ルール・LLM の順に、予算内で補完します。",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


# Set by main() from the command line: this invocation only prints help (``hokan leads --help``).
_help_only = False


@app.callback()
def _root(ctx: typer.Context) -> None:
    """hokan（補完）: 日本の企業データの欠損を補完します。"""
    # Help needs no Django, which costs ~0.7 s to set up; ``hokan manage …`` always gets it.
    if _help_only and ctx.invoked_subcommand != "manage":
        return
    setup_django()


@app.command(
    "manage",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help="Django の管理コマンドを実行します（例: hokan manage createsuperuser）。",
)
def manage(ctx: typer.Context) -> None:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["hokan manage", *ctx.args])


def _register_groups() -> None:
    from hokan.core.extract.command import app as extract_app
    from hokan.leads.command import app as leads_app
    from hokan.leads.command import usage

    app.add_typer(extract_app, name="extract", help="ページから会社情報を抽出します。")
    app.add_typer(leads_app, name="leads", help="営業リストの取り込み・補完・書き出し。")
    from hokan.registry.command import app as registry_app

    app.add_typer(registry_app, name="registry", help="公的データ（EDINET・gBizINFO）の企業台帳: 取り込み・検索。")
    app.command("usage", help="今月の API 使用量と上限を表示します。")(usage)
    from hokan import service

    app.command("serve", help="Web アプリ（管理画面・API）を起動します（gunicorn）。")(service.serve)
    app.command("worker", help="Celery ワーカーを起動します（キュー ai_enrich）。")(service.worker)
    app.command("beat", help="Celery Beat（毎日 03:00 の補完）を起動します。")(service.beat)
    from hokan.estimate.command import app as estimate_app

    app.add_typer(estimate_app, name="estimate", help="AI見積もり（設計書004）: 価格計算・データ削除。")
    from hokan.core.documents.command import app as documents_app

    app.add_typer(documents_app, name="documents", help="PDF・画像の文字を読み取ります（テキスト層・OCR）。")
    from hokan.municipal.command import app as municipal_app

    app.add_typer(municipal_app, name="municipal", help="自治体サービス情報（設計書003）: 公式サイトから根拠付きの下書きを作成します。")
    from hokan.scoring.command import app as scoring_app

    app.add_typer(scoring_app, name="scoring", help="発話スコアリング（設計書002）: シートの各行をカテゴリごとに採点します。")
    from hokan.knowledge.command import app as knowledge_app

    app.add_typer(knowledge_app, name="knowledge", help="ライブコマース知識ベース（設計書001）: 分析の保存・検索・売上の読み取り。")


def main() -> None:
    global _help_only
    _help_only = any(arg in ("--help", "-h") for arg in sys.argv[1:])
    _register_groups()
    try:
        app(prog_name="hokan", standalone_mode=True)
    except HokanError as exc:  # a configuration or input error: a message, never a traceback
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]エラー:[/] {escape(str(exc))}")
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
