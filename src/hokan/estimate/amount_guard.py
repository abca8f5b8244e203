"""Only the engine's amounts reach the customer (design document 004 §8.1, extended to the texts).

§8.1 overwrites the price fields with the engine's; the customer also reads the LLM's prose
(the API response, the PDF, both e-mails), so every yen amount in it must be one the pricing
engine produced. Pure, no Django.

Allowed amounts (:func:`engine_amounts`): the two totals, every feature's two prices, and the
savings (standard − hybrid) of the whole and of each feature — written exactly or as a
rounding at the precision written (``約127万円`` for ¥1,272,345; see
``core.ja.amounts.is_rounding_of``). The customer's own budget limit (step 11) is allowed
only in a sentence that names it as the budget (予算). Periodic amounts (月額, /月) are never
the engine's: it prices a one-off development.

A text with a foreign amount (:func:`guard_text`) loses the sentences that state one; a text
of one sentence (a title such as ``project_name``) loses the amount phrase instead, with its
label and particle, so it still reads naturally (「予算1.5億円の受発注DX」 → 「受発注DX」).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hokan.core.ja.amounts import Amount, find_amounts, is_rounding_of

_SENTENCE = re.compile(r"[^。！？!?\n]*[。！？!?\n]?")
# What goes with an amount phrase when it is cut out of a title.
_LEAD = r"(?:(?:ご?予算|総額|費用|概算|合計|開発費|金額|価格|約|およそ|概ね|最大で?|最低|最小|月額|年額|毎月|は|が|で|:|：)\s*)*"
_TRAIL = (r"\s*(?:[~〜～\-]\s*)?(?:程度|前後|規模|以内|以下|以上|未満|ほど|くらい|ぐらい|/月|／月|/年|／年|から|まで|"
          r"\(税[別込抜]\)|（税[別込抜]）)*\s*(?:の|で|、|,)?")
_BUDGET_WORD = re.compile(r"予算")


@dataclass(frozen=True)
class Allowed:
    """The amounts a text may state: ``engine`` anywhere, ``budget`` only beside 予算."""

    engine: frozenset[int]
    budget: frozenset[int] = frozenset()


def engine_amounts(calculated: dict[str, Any]) -> Allowed:
    """The amounts of ``calculated_data`` (§5) a text may state (see the module docstring)."""
    amounts = {calculated["total_standard"], calculated["total_hybrid"],
               calculated["total_standard"] - calculated["total_hybrid"]}
    for feature in calculated.get("features", []):
        amounts.update((feature["standard_price"], feature["hybrid_price"],
                        feature["standard_price"] - feature["hybrid_price"]))
    budget = set()
    status = calculated.get("budget_status")
    if isinstance(status, dict) and isinstance(status.get("upper_limit"), int):
        budget.add(status["upper_limit"])
    return Allowed(frozenset(a for a in amounts if a > 0), frozenset(budget))


def _is_allowed(amount: Amount, text: str, allowed: Allowed) -> bool:
    if amount.per is not None:
        return False
    if any(is_rounding_of(amount, exact) for exact in allowed.engine):
        return True
    before = text[max(0, amount.start - 15):amount.start]
    return bool(_BUDGET_WORD.search(before)) and any(is_rounding_of(amount, b) for b in allowed.budget)


def foreign_amounts(text: str, allowed: Allowed) -> list[Amount]:
    """The amounts in ``text`` the engine did not produce."""
    return [a for a in find_amounts(text) if not _is_allowed(a, text, allowed)]


AMOUNT_PLACEHOLDER = "お見積書記載の金額"
_QUALIFIER = re.compile(r"\s*(?:[~〜～\-]\s*)?(?:程度|前後|規模|以内|以下|以上|未満|ほど|くらい|ぐらい|/月|／月|/年|／年|"
                        r"\(税[別込抜]\)|（税[別込抜]）)*")
_ATTRIBUTIVE = re.compile(r"(?:の|[)）]|、|,|$)")
_APPROX = re.compile(r"(?:月額|年額|毎月|約|およそ|概ね|最大で?|最低)\s*$")


def _cut_amounts(text: str, amounts: Iterable[Amount]) -> str:
    """``text`` without its foreign amounts, reading naturally.

    An amount that modifies a noun or stands in parentheses (「予算1.5億円の受発注DX」,
    「受発注DX（予算1.5億円）」) is cut out with its label, qualifier and particle; an amount
    that is the predicate or an object (「総額は約1,000万円です」) becomes AMOUNT_PLACEHOLDER
    (「総額はお見積書記載の金額です」).
    """
    out = text
    for amount in sorted(amounts, key=lambda a: a.start, reverse=True):
        start, end = amount.start, amount.end
        qualifier = _QUALIFIER.match(out, end)
        after = qualifier.end() if qualifier else end
        if _ATTRIBUTIVE.match(out, after):
            lead = re.search(_LEAD + r"$", out[:start])
            if lead:
                start = lead.start()
            trail = re.match(_TRAIL, out[end:])
            if trail:
                end += trail.end()
            out = out[:start] + out[end:]
        else:
            approx = _APPROX.search(out[:start])
            if approx:
                start = approx.start()
            out = out[:start] + AMOUNT_PLACEHOLDER + out[after:]
    out = re.sub(r"[(（]\s*[)）]", "", out)
    out = re.sub(r"\s{2,}", " ", out).strip(" 、,")
    return out if out.strip("。.!！ ") else AMOUNT_PLACEHOLDER


def guard_text(text: str, allowed: Allowed) -> str:
    """``text`` with no amount the engine did not produce (see the module docstring)."""
    if not foreign_amounts(text, allowed):
        return text
    sentences = [s for s in _SENTENCE.findall(text) if s]
    kept = [s for s in sentences if not foreign_amounts(s, allowed)]
    if len(sentences) > 1 and kept:
        return "".join(kept).strip()
    return _cut_amounts(text, foreign_amounts(text, allowed))
