"""The LLM step of the extraction (design document 003 §7.2): one call per page, only the missing variables.

The prompt (``prompt_ja.txt``, Japanese) lists the variables with their catalogue descriptions
and examples and asks, per variable, for ``{"value", "quote"}`` (the item shape of
``core.extract.llm.answer_schema``); the page is sent as data between markers, after
``core.prompt_injection.filter_injection`` and ``core.ja.pii.mask_pii`` (personal names and
numbers: an official page's contact phone, e-mail and address are the facts asked for and are
kept), cut at ``MAX_PAGE_CHARS``.

An answer is kept only when (otherwise it is dropped, with a Japanese message in ``errors``):

- its quote is in the page text (folded, whitespace-free comparison, :mod:`.text`);
- its value is in its own quote (digits for a phone; any value but a boolean) — so an address
  pattern never becomes an e-mail and a "suggested" value not printed on the page never passes;
- it is not vague and passes validation (done by the caller, ``extraction._accept``);
- it is not the last item of a truncated answer that json-repair fixed up ("電" of "電話").

An unusable answer (no JSON object) is asked again once with ``core.llm.REASK_INSTRUCTION``; a
provider error, a closed budget (``BudgetExceeded``) or work already paid (``AlreadyPaid``) ends
the step with the variables missing and the reason in ``errors`` — never a traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from hokan.core.errors import AlreadyPaid, BudgetExceeded, LLMError, LLMOutputError
from hokan.core.extract.llm import answer_schema, answer_template
from hokan.core.ja.pii import mask_pii
from hokan.core.llm import REASK_INSTRUCTION, JsonRequest
from hokan.core.prompt_injection import filter_injection
from hokan.municipal.catalogue import VariableSpec
from hokan.municipal.extraction.rules import Candidate
from hokan.municipal.extraction.text import haystack, in_page, squeeze

PROMPT_FILE = Path(__file__).with_name("prompt_ja.txt")
MAX_PAGE_CHARS = 16_000
MAX_QUOTE_CHARS = 300
SCHEMA_NAME = "municipal_extract"
# Personal data never sent; the office's phone, e-mail, address and URLs are the facts asked for.
MASKED_KINDS = frozenset({"name", "my_number", "card", "bank_account"})


@dataclass
class Answer:
    """The step's outcome: ``candidates`` by variable name, ``errors`` (Japanese), ``calls`` paid
    (a cache hit is 0), ``cost_usd`` committed by the ledger."""

    candidates: dict[str, Candidate] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    cost_usd: Decimal = Decimal("0")


def _prompt_parts() -> tuple[str, str]:
    text = PROMPT_FILE.read_text(encoding="utf-8")
    _, _, rest = text.partition("=== system ===\n")
    system, _, user = rest.partition("=== user ===\n")
    return system.strip(), user


def build_request(*, lines: list[str], url: str | None, variables: list[VariableSpec], work_key: str = "",
                  today: dt.date | None = None) -> JsonRequest:
    """The one request for a page (module docstring). Its idempotency key is
    ``municipal:extract:<sha256 of url, page and variables>:<work_key or today's date>``."""
    system, user = _prompt_parts()
    page = "\n".join(lines)
    sent = filter_injection(mask_pii(page, kinds=MASKED_KINDS))[:MAX_PAGE_CHARS]
    listing = "\n".join(
        f"- {spec.name}: {spec.label} — {spec.description}（例: {'、'.join(spec.examples[:3])}）" for spec in variables
    )
    names = [spec.name for spec in variables]
    prompt = (user.replace("{variables}", listing).replace("{template}", answer_template(names))
              .replace("{url}", url or "（不明）").replace("{page}", sent))  # fmt: skip
    digest = hashlib.sha256("\x1f".join([url or "", page, *names]).encode("utf-8")).hexdigest()[:32]
    key = f"municipal:extract:{digest}:{work_key or (today or dt.date.today()).isoformat()}"
    return JsonRequest(system=system, user=prompt, schema=answer_schema(names), schema_name=SCHEMA_NAME,
                       temperature=0.0, max_output_tokens=2048, idempotency_key=key)


def _call(llm: Any, request: JsonRequest, answer: Answer) -> Any:
    try:
        try:
            completion = llm.complete_json(request)
        except LLMOutputError as exc:
            answer.calls += 1
            answer.cost_usd += getattr(getattr(exc, "usage", None), "cost_usd", Decimal("0")) or Decimal("0")
            again = dataclasses.replace(request, user=request.user + REASK_INSTRUCTION,
                                        idempotency_key=f"{request.idempotency_key}:reask")
            completion = llm.complete_json(again)
    except LLMOutputError as exc:
        answer.calls += 1
        answer.cost_usd += getattr(getattr(exc, "usage", None), "cost_usd", Decimal("0")) or Decimal("0")
        answer.errors.append("AI抽出: 回答がJSONとして読めませんでした（再質問後も同じ）。未取得のままにします")
        return None
    except (BudgetExceeded, AlreadyPaid) as exc:
        answer.errors.append(f"AI抽出を行いませんでした: {exc}")
        return None
    except LLMError as exc:
        answer.errors.append(f"AI抽出に失敗しました（{type(exc).__name__}）: {exc}")
        return None
    if not completion.cached:
        answer.calls += max(1, completion.usage.calls)
        answer.cost_usd += completion.usage.cost_usd
    return completion


def _digits(text: str) -> str:
    return re.sub(r"\D", "", squeeze(text))


def ask(llm: Any, *, lines: list[str], url: str | None, variables: list[VariableSpec], work_key: str = "") -> Answer:
    """Ask ``llm`` for ``variables`` on one page; the answers that quote the page (module docstring)."""
    answer = Answer()
    request = build_request(lines=lines, url=url, variables=variables, work_key=work_key)
    completion = _call(llm, request, answer)
    if completion is None:
        return answer
    page = haystack(lines)
    data = dict(completion.data) if isinstance(completion.data, dict) else {}
    if completion.repaired and data:  # a truncated answer fixed up by json-repair: the cut went through its last item
        last = list(data)[-1]
        data.pop(last)
        answer.errors.append(f"{last}: AIの回答が途中で切れていたため採用しません")
    for spec in variables:
        item = data.get(spec.name)
        if isinstance(item, (str, int, float, bool)):
            item = {"value": item}
        if not isinstance(item, dict):
            continue
        raw_value = item.get("value")
        if raw_value is None or (isinstance(raw_value, str) and not raw_value.strip()):
            continue
        value = str(raw_value).strip()
        if isinstance(raw_value, bool):
            value = "true" if raw_value else "false"
        quote = str(item.get("quote") or "").strip()[:MAX_QUOTE_CHARS]
        if not quote:
            answer.errors.append(f"{spec.label}: AIの回答に引用がないため採用しません（{value[:40]}）")
            continue
        if not in_page(quote, page):
            answer.errors.append(f"{spec.label}: AIの引用がページにないため採用しません（{quote[:40]}）")
            continue
        if spec.validation_type != "boolean" and not _value_in_quote(spec, value, quote):
            answer.errors.append(f"{spec.label}: AIの値が引用の中にないため採用しません（{value[:40]}）")
            continue
        answer.candidates[spec.name] = Candidate(spec.field, value, value, quote, "llm", in_block=False)
    return answer


def _value_in_quote(spec: VariableSpec, value: str, quote: str) -> bool:
    if spec.validation_type == "phone":
        digits = _digits(value)
        return len(digits) >= 9 and digits in _digits(quote)
    return squeeze(value) in squeeze(quote)


def build_client(*, max_retries: int | None = None, below_cache: Callable[[Any], Any] | None = None) -> Any:
    """cache → budget (ledger "municipal") → rate limiter → the municipal profile's provider; None offline.

    below_cache: wraps the client under the cache (e.g. ``MunicipalQuotas.limit_llm``: a
    cache hit then claims no free-tier call, as it reaches no provider).
    """
    from hokan.core.budget import Limits, get_ledger
    from hokan.core.llm import get_client
    from hokan.core.llm.budgeted import BudgetedClient
    from hokan.core.llm.cached import cached
    from hokan.core.llm.limited import limited_client

    client = get_client(profile="municipal", max_retries=max_retries)
    if not client.available:
        return None
    budgeted = BudgetedClient(
        limited_client(client),
        ledger=get_ledger("municipal"),
        estimate_usd=Limits.from_settings("municipal").cost_per_call_usd,
        key="municipal:extract",
    )
    return cached(below_cache(budgeted) if below_cache else budgeted, scope="municipal")
