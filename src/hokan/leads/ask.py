"""What the leads job asks an LLM, and how it reads the answer back into Lead columns.

- ``askable(fields)``: the columns an LLM may be asked for (not personal data, not our notes);
- ``build_request(lead, fields, key=...)``: the prompt of design document 000 §7 (JSON only,
  in Japanese; leads/prompts/enrich_company*.txt) and its JSON schema
  (``hokan.core.extract.llm.answer_schema``);
- ``clean_answer_value(name, raw)``: one answer item → {column: value}, the ``Cleaner`` that
  ``hokan.core.extract.llm.values_from_answer`` applies (所在地 fills prefecture, city,
  location and postal code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hokan.core.extract.llm import answer_schema, answer_template
from hokan.core.llm.client import JsonRequest
from hokan.leads.columns import BY_NAME, Column
from hokan.leads.models import Lead
from hokan.leads.values import clean_value, location_answer

PROMPT_DIR = Path(__file__).parent / "prompts"


def _prompt(name: str) -> str:
    return (PROMPT_DIR / name).read_text(encoding="utf-8")


def askable(fields: list[str]) -> list[str]:
    """The columns among ``fields`` an LLM may be asked for (not personal, not our notes)."""
    return [name for name in fields if BY_NAME[name].prompt_label]


def asked_columns(fields: list[str]) -> list[Column]:
    """The ``Column``s of ``fields`` (in order), as ``values_from_answer`` takes them."""
    return [BY_NAME[name] for name in fields]


def build_request(lead: Lead, fields: list[str], *, key: str) -> JsonRequest:
    """The §7 prompt (JSON only, in Japanese) and its JSON schema for the missing ``fields``.

    key: the idempotency key of the paid call (``lead:{id}:{day}``), carried on the request.
    """
    labels = [BY_NAME[name].prompt_label for name in fields]
    user = _prompt("enrich_company.txt").format(
        name=lead.name,
        url=lead.website_url or "不明",
        missing=", ".join(labels),
        output_format=answer_template(labels),
    )
    return JsonRequest(
        system=_prompt("enrich_company_system.txt").strip(),
        user=user,
        schema=answer_schema(labels),
        schema_name="lead_enrichment",
        temperature=0.0,
        max_output_tokens=800,
        idempotency_key=key,
    )


def clean_answer_value(name: str, raw: str) -> dict[str, Any]:
    """One answer item → {column: value}; 所在地 is split into prefecture / city / location
    (and postal code when given). {} for a vague value.

    Raises:
        ValueError: the value is invalid for the column (Japanese reason).
    """
    if name != "location":
        value = clean_value(name, raw)
        return {} if value is None else {name: value}
    return location_answer(raw)
