"""Copy the packaged catalogue (``hokan.municipal.catalogue``) into ``Service`` /
``VariableDefinition`` rows, and read them back as catalogue specs for the flow.

Rows are created for catalogue entries that are missing; an existing row is left as the editor
made it in the admin (``overwrite=True`` puts the catalogue's text back). The flow reads the rows
(``service_variables``), so an edited description is what the query and the LLM see.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from hokan.municipal.catalogue import Catalogue, VariableSpec, load_catalogue
from hokan.municipal.models import Service, VariableDefinition


@dataclass(frozen=True)
class SeedReport:
    services_created: int
    variables_created: int
    variables_updated: int


def sync_catalogue(catalogue: Catalogue | None = None, *, overwrite: bool = False) -> SeedReport:
    """Create the services and variables of ``catalogue`` (default: the packaged one) that are
    missing; with ``overwrite`` also reset existing ones to the catalogue's text. Service
    variable lists gain the catalogue's variables (none is removed). Idempotent."""
    catalogue = catalogue or load_catalogue()
    created_vars = updated_vars = created_services = 0
    with transaction.atomic():
        rows: dict[str, VariableDefinition] = {v.name: v for v in VariableDefinition.objects.all()}
        for spec in catalogue.variables:
            values = {"label": spec.label, "description": spec.description, "examples": list(spec.examples),
                      "validation_type": spec.validation_type, "category": spec.category, "topic": spec.topic,
                      "field": spec.field}
            row = rows.get(spec.name)
            if row is None:
                rows[spec.name] = VariableDefinition.objects.create(name=spec.name, **values)
                created_vars += 1
            elif overwrite and any(getattr(row, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(row, key, value)
                row.save()
                updated_vars += 1
        for service_spec in catalogue.services:
            service, created = Service.objects.get_or_create(
                key=service_spec.topic, defaults={"name": service_spec.name, "category": service_spec.category})
            created_services += int(created)
            if overwrite and not created and (service.name, service.category) != (service_spec.name,
                                                                                  service_spec.category):
                service.name, service.category = service_spec.name, service_spec.category
                service.save(update_fields=["name", "category"])
            service.variables.add(*[rows[name] for name in service_spec.variables])
    return SeedReport(created_services, created_vars, updated_vars)


def ensure_seeded() -> None:
    """Seed from the packaged catalogue when there is no service yet (first run)."""
    if not Service.objects.exists():
        sync_catalogue()


def spec_of(row: VariableDefinition) -> VariableSpec:
    """The catalogue spec of a variable row, with the row's (possibly edited) texts."""
    topic, _, rest = row.name.partition("_")
    return VariableSpec(name=row.name, topic=row.topic or topic, field=row.field or rest or row.name,
                        label=row.label or row.name, category=row.category, description=row.description,
                        examples=tuple(str(e) for e in (row.examples or [])),
                        validation_type=row.validation_type)


def service_variables(service: Service) -> list[VariableSpec]:
    """The variables of ``service`` as specs, ordered by name."""
    return [spec_of(row) for row in service.variables.order_by("name")]
