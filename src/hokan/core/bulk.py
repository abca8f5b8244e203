"""Bulk writes the ORM makes slow: one ``UPDATE … WHERE pk = %s`` run with ``executemany``.

Django's ``bulk_update`` builds a ``CASE WHEN`` expression per column in Python; for the 8,078
records of an EDINET re-import it took 65 s (profiled), this about one. Used by the registry's
record store and the lead import. No app is imported here.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def update_columns(model: type[models.Model], objects: Sequence[models.Model], names: Sequence[str]) -> None:
    """Write the fields ``names`` of ``objects`` (saved instances of ``model``) in one executemany.

    Values go through each field's ``get_db_prep_save``, as ``save()`` would; nothing else of the
    rows is written (so a concurrent writer's other columns stay). Runs in the caller's
    transaction. Raises DatabaseError as the database does.
    """
    if not objects:
        return
    fields = [model._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET "
        + ", ".join(f"{quote(f.column)} = %s" for f in fields)  # type: ignore[union-attr]
        + f" WHERE {quote(model._meta.pk.column)} = %s"  # type: ignore[union-attr]
    )
    params = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields] + [obj.pk]  # type: ignore[union-attr]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
