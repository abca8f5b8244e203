"""What a scoring run is told: ``RunConfig`` (document 002 §1–§5), categories and the system prompt.

``RunConfig.from_settings(**overrides)`` reads the settings of the "scoring (S1)" block of
``hokan/settings.py`` (names as document 002 gives them, prefixed ``HOKAN_SCORING_``; README
"Settings"); the CLI and the API override single fields (``--scale``, ``--no-cache``). The
config of a job is stored with the job (``ScoringJob.config``) so that a resumed job asks the
same questions — and therefore hits the same cache entries and idempotency keys — even after
the settings changed.

Categories (``load_categories``): a JSON list (``[{"name": ..., "description": ...}]`` or
``{"categories": [...]}``), a YAML list of the same, or a CSV with the columns ``name`` /
``description`` (or 名前・カテゴリ / 説明). Names must be unique and non-empty; a description is
required (it is what the model scores against). The system prompt (``load_system_prompt``):
a UTF-8 text file, default ``prompts/system_ja.txt`` of this package.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hokan.core.errors import InputError

DEFAULT_PROMPT = Path(__file__).with_name("prompts") / "system_ja.txt"
SCALES = ("0-1", "1-5")
MAX_CATEGORIES_PER_CALL = 10  # document 002 / issue 11 §1: "at most 10, as the original does"
_NAME_HEADERS = ("name", "名前", "カテゴリ", "カテゴリ名", "category")
_DESCRIPTION_HEADERS = ("description", "説明", "定義", "desc")


@dataclass(frozen=True)
class Category:
    """One category: ``name`` (the output column and the answer's key), ``description``
    (what the model scores the utterance against)."""

    name: str
    description: str


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a scoring run (document 002 §1–§5). Times in seconds.

    pipeline_queue_size: items waiting between two pipeline stages (§1.1).
    chunk_row_limit: rows per chunk (§5.1, 500). chunk_retry_limit: retries of a failed chunk
        (§5.1); a retry waits ``min(60, 2**retry)`` s (core.jobs.backoff_s).
    flush_interval / flush_batch_size: the Writer writes when this many seconds passed or
        this many cells are waiting, whichever comes first (§3.1: 2 s / 50).
    cache_enabled, cache_ttl_s (24 h), cache_max_entries (10,000): the LLM cache (§4.1).
    concurrency_min / concurrency_max: AIMD bounds of requests in flight (§1.1 ScoringInvoker).
    utterances_per_call: rows asked in one request (each validated on its own).
    categories_per_call: categories per request (at most 10); more categories = more blocks.
    scale: "0-1" (real numbers) or "1-5" (integers).
    provider / model: "" = the core.llm profile "scoring" (HOKAN_SCORING_LLM_*, else HOKAN_LLM_*).
    temperature: sampling temperature sent (part of the cache key).
    request_timeout_s: per request phase; 0 = the provider's own (HOKAN_LLM_TIMEOUT_S).
    call_deadline_s: the longest one call may take with its retries (a hung provider never
        stalls the pipeline: the call fails, the row is retried with its chunk).
    max_output_tokens: answer cap per call; 0 = 60 + 40 per utterance × categories.
    max_utterance_chars: a longer utterance is not sent (its cells are errors naming the
        length): it would not fit a model's context, and a cut text would be scored wrongly.
    """

    pipeline_queue_size: int = 100
    chunk_row_limit: int = 500
    chunk_retry_limit: int = 3
    flush_interval: float = 2.0
    flush_batch_size: int = 50
    cache_enabled: bool = True
    cache_ttl_s: int = 86_400
    cache_max_entries: int = 10_000
    concurrency_min: int = 1
    concurrency_max: int = 16
    utterances_per_call: int = 5
    categories_per_call: int = 10
    scale: str = "0-1"
    provider: str = ""
    model: str = ""
    temperature: float = 0.0
    request_timeout_s: float = 0.0
    call_deadline_s: float = 300.0
    max_output_tokens: int = 0
    max_utterance_chars: int = 20_000

    def __post_init__(self) -> None:
        problems = []
        if self.scale not in SCALES:
            problems.append(f"scale は {' / '.join(SCALES)} のどちらかです（{self.scale!r}）")
        if not 1 <= self.categories_per_call <= MAX_CATEGORIES_PER_CALL:
            problems.append(f"categories_per_call は 1〜{MAX_CATEGORIES_PER_CALL} です（{self.categories_per_call}）")
        if not 1 <= self.concurrency_min <= self.concurrency_max:
            problems.append(f"concurrency_min（{self.concurrency_min}）は 1 以上、concurrency_max（{self.concurrency_max}）以下です")
        for name in ("pipeline_queue_size", "chunk_row_limit", "flush_batch_size", "utterances_per_call",
                     "cache_max_entries", "cache_ttl_s", "max_utterance_chars"):
            if getattr(self, name) < 1:
                problems.append(f"{name} は 1 以上です（{getattr(self, name)}）")
        if self.chunk_retry_limit < 0 or self.flush_interval <= 0 or self.call_deadline_s <= 0:
            problems.append("chunk_retry_limit は 0 以上、flush_interval と call_deadline_s は正の数です")
        if problems:
            raise InputError("スコアリングの設定が不正です: " + "; ".join(problems))

    @classmethod
    def from_settings(cls, **overrides: Any) -> RunConfig:
        """The settings' config (``HOKAN_SCORING_*``), with ``overrides`` (field name → value;
        None values are ignored). Raises InputError on a value out of range."""
        from django.conf import settings

        values = {f.name: getattr(settings, f"HOKAN_SCORING_{f.name.upper()}") for f in dataclasses.fields(cls)
                  if hasattr(settings, f"HOKAN_SCORING_{f.name.upper()}")}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def score_range(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.scale == "0-1" else (1.0, 5.0)

    def output_tokens(self, utterances: int, categories: int) -> int:
        """The answer cap (tokens) of a call for ``utterances`` × ``categories`` scores."""
        if self.max_output_tokens:
            return self.max_output_tokens
        return 60 + 40 * utterances * max(1, categories)


@dataclass(frozen=True)
class Categories:
    """The categories of a run, split into blocks of ``per_call`` (one request asks one block)."""

    items: tuple[Category, ...]
    per_call: int = MAX_CATEGORIES_PER_CALL
    blocks: tuple[tuple[Category, ...], ...] = field(init=False)

    def __post_init__(self) -> None:
        blocks = tuple(self.items[i:i + self.per_call] for i in range(0, len(self.items), self.per_call))
        object.__setattr__(self, "blocks", blocks)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.items]

    def to_json(self) -> list[dict[str, str]]:
        return [{"name": c.name, "description": c.description} for c in self.items]

    @classmethod
    def from_json(cls, data: list[dict[str, str]], per_call: int) -> Categories:
        return cls(tuple(Category(d["name"], d["description"]) for d in data), per_call)


def _clean(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value if value is not None else "")).strip()


def parse_categories(entries: Any, *, source: str) -> list[Category]:
    """Categories from decoded JSON/YAML data: a list of {name, description} (or of
    ``{"name": "description"}`` pairs), or a mapping with a ``categories`` list.

    Raises:
        InputError: not a list, an entry without name or description, a duplicate name, none at all.
    """
    if isinstance(entries, dict) and "categories" in entries:
        entries = entries["categories"]
    if isinstance(entries, dict):  # {"name": "description", ...}
        entries = [{"name": k, "description": v} for k, v in entries.items()]
    if not isinstance(entries, list):
        raise InputError("カテゴリは name と description を持つ項目のリストで指定してください", source=source)
    found: list[Category] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise InputError(f"{number} 番目のカテゴリが name / description の組ではありません", source=source)
        lowered = {str(k).strip().lower(): v for k, v in entry.items()}
        name = next((_clean(lowered[h]) for h in _NAME_HEADERS if h in lowered), "")
        description = next((_clean(lowered[h]) for h in _DESCRIPTION_HEADERS if h in lowered), "")
        if not name:
            raise InputError(f"{number} 番目のカテゴリに名前（name）がありません", source=source)
        if not description:
            raise InputError(f"カテゴリ「{name}」に説明（description）がありません。説明に対して採点します",
                             source=source)
        if name in seen:
            raise InputError(f"カテゴリ「{name}」が重複しています", source=source)
        seen.add(name)
        found.append(Category(name, description))
    if not found:
        raise InputError("カテゴリが1つもありません", source=source)
    return found


def load_categories(path: Path | str, *, per_call: int = MAX_CATEGORIES_PER_CALL) -> Categories:
    """Read a categories file (.json, .yaml/.yml, .csv; module docstring).

    Raises:
        InputError: missing/unreadable file, unknown extension, bad content (names the file
            and, for CSV, the row).
    """
    path = Path(path)
    source = path.name
    if not path.is_file():
        raise InputError("カテゴリのファイルが見つかりません", source=str(path))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        from hokan.core.tabular import TableLimits, read_table

        table = read_table(path, limits=TableLimits(max_rows=10_000))
        rows = list(table.rows)
        if not rows:
            raise InputError("カテゴリが1つもありません", source=source)
        headers = [_clean(h).lower() for h in rows[0][1]]
        entries = [dict(zip(headers, cells, strict=False)) for _, cells in rows[1:] if any(_clean(c) for c in cells)]
        return Categories(tuple(parse_categories(entries, source=source)), per_call)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"カテゴリのファイルを UTF-8 として読めません: {exc}", source=source) from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"JSON として読めません（{exc.lineno} 行 {exc.colno} 文字目: {exc.msg}）",
                             source=source) from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"YAML として読めません: {exc}", source=source) from None
    else:
        raise InputError(f"カテゴリのファイルは .json / .yaml / .csv です（{suffix or '拡張子なし'}）", source=source)
    return Categories(tuple(parse_categories(data, source=source)), per_call)


def load_system_prompt(path: Path | str | None = None) -> str:
    """The system prompt: the file at ``path`` (UTF-8), or the packaged Japanese default.

    Raises:
        InputError: the file is missing, unreadable or empty.
    """
    target = Path(path) if path else DEFAULT_PROMPT
    try:
        text = target.read_text(encoding="utf-8-sig").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"システムプロンプトを読めません: {exc}", source=str(target)) from None
    if not text:
        raise InputError("システムプロンプトが空です", source=str(target))
    return text
