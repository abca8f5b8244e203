from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "hokan.leads"
    label = "leads"
    verbose_name = "営業リスト"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from hokan.leads.schedule import ensure_enrich_schedule

        # The nightly run at 03:00 (document 000 §9), created once, edited in the admin.
        post_migrate.connect(ensure_enrich_schedule, sender=self, dispatch_uid="hokan.leads.enrich_schedule")
