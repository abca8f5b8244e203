from django.apps import AppConfig


class EstimateConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hokan.estimate"
    label = "estimate"
    verbose_name = "AI見積もり"
