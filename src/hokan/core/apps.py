from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "hokan.core"
    label = "core"
    verbose_name = "共通基盤"
    default_auto_field = "django.db.models.BigAutoField"
