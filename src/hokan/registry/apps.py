from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "hokan.registry"
    label = "registry"
    verbose_name = "公的データ（企業台帳）"
    default_auto_field = "django.db.models.BigAutoField"
