from django.apps import AppConfig


class MunicipalConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hokan.municipal"
    label = "municipal"
    verbose_name = "自治体サービス情報"
