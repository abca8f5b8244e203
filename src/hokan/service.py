"""``hokan serve`` / ``hokan worker`` / ``hokan beat``: the three processes of the service.

Each replaces the ``hokan`` process (``os.execv``) with a well-known server, so signals from a
process manager (honcho, systemd) reach it directly:

- ``serve``: gunicorn with ``hokan.wsgi:application``, bound to 127.0.0.1:8000 by default.
- ``worker``: ``celery -A hokan.celery worker`` on the queues ``ai_enrich`` (the lead tasks)
  and ``celery`` (other apps' tasks).
- ``beat``: ``celery -A hokan.celery beat`` with django-celery-beat's DatabaseScheduler (the
  nightly run at 03:00 Asia/Tokyo, editable in the admin).

``honcho start`` runs all three from the Procfile at the repository root. The worker and
beat need a broker (REDIS_URL); without one, tasks run in-process and there is nothing to
start.
"""

from __future__ import annotations

import os
import sys

import typer


def _exec(argv: list[str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *argv])


def _require_broker() -> None:
    from hokan.celery import broker_url

    if not broker_url():
        typer.echo("REDIS_URL（または CELERY_BROKER_URL）が未設定です。Redis の URL を設定してください"
                   "（未設定の間、タスクは各プロセス内で直接実行されます）。", err=True)
        raise typer.Exit(2)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="待ち受けるアドレス（外部公開は 0.0.0.0）"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="待ち受けるポート"),
    workers: int = typer.Option(2, "--workers", min=1, help="gunicorn のワーカープロセス数"),
    timeout: int = typer.Option(120, "--timeout", min=1, help="1リクエストの制限時間（秒）"),
) -> None:
    """Web アプリ（管理画面・API）を gunicorn で起動します。"""
    from django.core.management import call_command

    # The admin's CSS and JS are served by WhiteNoise from STATIC_ROOT.
    call_command("collectstatic", interactive=False, verbosity=0)
    _exec(["-m", "gunicorn", "hokan.wsgi:application", "--bind", f"{host}:{port}", "--workers", str(workers),
           "--timeout", str(timeout), "--access-logfile", "-"])


def worker(
    queues: str = typer.Option("ai_enrich,celery", "--queues", "-Q", help="処理するキュー（カンマ区切り）"),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="同時に実行するタスク数"),
    pool: str = typer.Option("prefork", "--pool", help="プール（prefork / solo / threads）"),
    loglevel: str = typer.Option("INFO", "--loglevel", help="ログレベル"),
) -> None:
    """Celery ワーカーを起動します（キュー ai_enrich ほか）。"""
    _require_broker()
    _exec(["-m", "celery", "-A", "hokan.celery", "worker", "-Q", queues, "--concurrency", str(concurrency),
           "--pool", pool, "--loglevel", loglevel])


def beat(loglevel: str = typer.Option("INFO", "--loglevel", help="ログレベル")) -> None:
    """Celery Beat（毎日 03:00 の補完などのスケジューラ）を起動します。"""
    _require_broker()
    _exec(["-m", "celery", "-A", "hokan.celery", "beat", "--scheduler",
           "django_celery_beat.schedulers:DatabaseScheduler", "--loglevel", loglevel])
