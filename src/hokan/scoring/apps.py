from django.apps import AppConfig


class ScoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hokan.scoring"
    label = "scoring"
    verbose_name = "発話スコアリング"
