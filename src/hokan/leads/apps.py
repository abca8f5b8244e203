from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "hokan.leads"
    label = "leads"
    verbose_name = "営業リスト"
    default_auto_field = "django.db.models.BigAutoField"
