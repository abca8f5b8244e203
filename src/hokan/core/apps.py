from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "hokan.core"
    label = "core"
    verbose_name = "共通基盤"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The project's Celery app, so that shared_task functions bind to it (and to its broker
        # or eager mode) in every process: web, worker, CLI. See hokan/celery.py.
        from hokan import celery  # noqa: F401
