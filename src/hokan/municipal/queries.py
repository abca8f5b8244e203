"""Step 1 of the fetch flow (document 003 §4.1 step 3, §7.1): one search query per service.

With an LLM (``get_client(profile="municipal")``, budgeted in the ledger scope "municipal" and
cached by ``hokan.core.llm.cached``, so the same service asked again costs nothing) the prompt of
§7.1 asks for one line from the municipality, the service and its variables' descriptions.
Without one (no key: the offline client), or when its answer is unusable, the query is the
template ``<自治体名> <サービス名> <up to three labels>``. Either way the query ends with the
``site:`` restriction to the official domain (``Municipality.site_filter``), added when missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hokan.core.errors import AlreadyPaid, LLMError
from hokan.core.llm.client import JsonRequest, LLMClient
from hokan.municipal.catalogue import VariableSpec
from hokan.municipal.models import Municipality, Service

SYSTEM = "あなたは日本の自治体サービス情報を検索するアシスタントです。"
SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"],
          "additionalProperties": False}
MAX_QUERY_CHARS = 200
MAX_LISTED = 12


@dataclass(frozen=True)
class Query:
    """text: the query sent to the search provider (with ``site:``); method: ai | template;
    llm_calls: paid calls made for it (0 on a cache hit or offline); error: why the LLM's query
    was not used ("" when it was, or when none was asked)."""

    text: str
    method: str
    llm_calls: int = 0
    error: str = ""


def prompt(municipality: Municipality, service: Service, variables: Sequence[VariableSpec]) -> str:
    """The user prompt of §7.1 (Japanese)."""
    wanted = "\n".join(f"- {spec.label}: {spec.description}" for spec in variables[:MAX_LISTED])
    return (
        "以下の情報を取得するための最適な検索クエリを生成してください。\n\n"
        f"自治体名: {municipality.prefecture}{municipality.name if municipality.name != municipality.prefecture else ''}\n"
        f"サービス: {service.name}\n"
        f"取得したい情報:\n{wanted}\n\n"
        "出力形式: 検索クエリのみ（1行）を JSON の query に入れてください。"
    )


def template_query(municipality: Municipality, service: Service, variables: Sequence[VariableSpec]) -> str:
    """The offline query: name, service, the first three distinct generic labels, ``site:``."""
    labels: list[str] = []
    for spec in variables:
        label = spec.label.replace(service.name, "").strip("のと 　") or spec.label
        short = re.split(r"[（(・、]", label)[0].strip()
        if short and short not in labels and short not in service.name:
            labels.append(short)
        if len(labels) == 3:
            break
    return with_site(" ".join([municipality.name, service.name, *labels]), municipality)


def with_site(text: str, municipality: Municipality) -> str:
    """``text`` on one line, at most MAX_QUERY_CHARS, ending with the official ``site:``."""
    text = " ".join(text.split())[:MAX_QUERY_CHARS]
    site = municipality.site_filter()
    text = re.sub(r"\bsite:\S+", "", text).strip()
    return f"{text} {site}".strip() if site else text


def build_query(municipality: Municipality, service: Service, variables: Sequence[VariableSpec],
                client: LLMClient | None, *, idempotency_key: str = "") -> Query:
    """The query for one service (module docstring). LLM errors never raise: the template is
    used and the reason kept in ``Query.error`` — except BudgetExceeded and LLMConfigError
    (a bad key), which stop the run (core.jobs FATAL_ERRORS)."""
    template = template_query(municipality, service, variables)
    if client is None or not getattr(client, "available", False):
        return Query(template, "template")
    request = JsonRequest(system=SYSTEM, user=prompt(municipality, service, variables), schema=SCHEMA,
                          schema_name="municipal_query", max_output_tokens=200, idempotency_key=idempotency_key)
    from hokan.core.errors import LLMConfigError

    try:
        completion = client.complete_json(request)
    except LLMConfigError:
        raise
    except (LLMError, AlreadyPaid) as exc:
        return Query(template, "template", error=f"クエリ生成に失敗しました（{type(exc).__name__}: {exc}）")
    calls = 0 if completion.cached else completion.usage.calls or 1
    text = completion.data.get("query")
    if not isinstance(text, str) or len(text.strip()) < 2:
        return Query(template, "template", calls, error="LLM のクエリが空でした")
    return Query(with_site(text, municipality), "ai", calls)
