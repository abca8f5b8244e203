from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hokan.knowledge"
    label = "knowledge"
    verbose_name = "ライブコマース知識ベース"
