"""Models of the municipal app (issue 10 §1; design document 003 §3, §6.1, §10, §11).

- ``Municipality``: one local government, keyed by its 全国地方公共団体コード (``lgcode``, six
  digits with the check digit), imported from ``municipal/localgovjp`` by
  ``hokan municipal import-municipalities``; the source of truth for the official domain.
- ``Service`` / ``VariableDefinition``: the service templates and their variables, seeded from
  the catalogue shipped in the package (``hokan.municipal.catalogue``), editable in the admin.
- ``Draft``: what hokan found for one (municipality, service): per variable a value with its
  provenance (``VALUE_KEYS``), the missing variables, errors and search attempts, a review
  status; every change is kept as a ``DraftVersion`` (the diff of §4.2).
- ``MunicipalRun``: links a ``hokan.core.jobs`` Job (one chunk per service) to its municipality.
- ``PageExtraction``: what extraction read from one page text (by the text's SHA-256) for a set
  of variables — a page whose text is unchanged costs no LLM call (§4.2).
- ``DocumentText``: the text of a PDF or image read by URL (§9.2 cache, the OCR API of §9.3).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.db import models

# The keys of one value in ``Draft.variables`` (issue 10 §1).
VALUE_KEYS = ("value", "raw", "quote", "source_url", "confidence", "method", "extracted_at", "validated")
# Per-value review state kept beside the value ("" = not reviewed yet).
REVIEW_KEY = "review"

# Hosts of the official forms (issue 10 §1): <anything>.lg.jp, and city|town|vill|pref.<name>.<pref>.jp
# (www.city.sabae.fukui.jp, www.vill.otoineppu.hokkaido.jp, www.pref.iwate.jp).
_OFFICIAL_FORM = re.compile(r"(^|\.)(city|town|vill|pref)\.[a-z0-9-]+(\.[a-z0-9-]+)?\.jp$")


def host_of(url: str) -> str:
    """The lower-case host of ``url`` without a leading ``www.`` ("" when it has none)."""
    try:
        host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def is_government_host(host: str) -> bool:
    """True for a host of the official forms: ``*.lg.jp`` or ``city|town|vill|pref.<name>(.<pref>).jp``."""
    host = host.lower().rstrip(".")
    return host.endswith(".lg.jp") or bool(_OFFICIAL_FORM.search(host))


class Municipality(models.Model):
    """A local government (都道府県・市区町村).

    lgcode: 全国地方公共団体コード, six digits (the five-digit code and its check digit,
    JIS X 0402 / 総務省). slug: the short id of document 003 (``aogashima``, ``takaoka``) given
    with ``hokan municipal run --id``; optional. level: see ``Level``. official_url: the
    official site's home page. last_fetched_at: end of its last completed run (the periodic
    update of §4.2 picks municipalities whose run is older than N days).
    """

    class Level(models.TextChoices):
        PREFECTURE = "prefecture", "都道府県"
        CITY = "city", "市"
        WARD = "ward", "行政区"
        SPECIAL_WARD = "special_ward", "特別区"
        TOWN = "town", "町"
        VILLAGE = "village", "村"

    lgcode = models.CharField("全国地方公共団体コード", max_length=6, unique=True)
    slug = models.SlugField("短縮ID", max_length=60, unique=True, null=True, blank=True)
    name = models.CharField("名称", max_length=60)
    kana = models.CharField("よみ", max_length=120, blank=True)
    prefecture = models.CharField("都道府県", max_length=10)
    level = models.CharField("区分", max_length=14, choices=Level.choices)
    official_url = models.URLField("公式サイト", max_length=300, blank=True)
    last_fetched_at = models.DateTimeField("最終取得日時", null=True, blank=True)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "自治体"
        verbose_name_plural = "自治体"
        ordering = ["lgcode"]
        indexes = [models.Index(fields=["prefecture", "name"], name="municipality_pref_name")]

    def __str__(self) -> str:
        return f"{self.prefecture} {self.name}" if self.level != self.Level.PREFECTURE else self.name

    @property
    def official_host(self) -> str:
        """The host of ``official_url`` without ``www.`` ("" when there is none)."""
        return host_of(self.official_url)

    def is_official_url(self, url: str) -> bool:
        """True when ``url`` is on this municipality's site (its host or a subdomain of it) or on
        a host of the official forms (``is_government_host``) — the +0.2 of §8.2."""
        host = host_of(url)
        if not host:
            return False
        own = self.official_host
        if own and (host == own or host.endswith("." + own)):
            return True
        return is_government_host(host)

    def site_filter(self) -> str:
        """The ``site:`` restriction of this municipality's queries (§7.1 offline template), or ""."""
        own = self.official_host
        return f"site:{own}" if own else ""


class VariableDefinition(models.Model):
    """A template variable (§3, §10.2): ``name`` as ``<topic>_<field>`` (``sodaigomi_fee``), its
    Japanese ``description`` and ``examples`` (what the LLM and the offline query read), the
    ``validation_type`` (a ``hokan.core.fields`` kind) and the §10.3 ``category``. ``field``: the
    generic fact of §3 it is (``fee``; what the rule extractors look for); ``topic``: its service."""

    class ValidationType(models.TextChoices):
        PHONE = "phone", "電話番号"
        EMAIL = "email", "メールアドレス"
        URL = "url", "URL"
        FEE = "fee", "金額"
        DATE = "date", "日付"
        TIME_RANGE = "time_range", "時間帯"
        PERCENT = "percent", "割合"
        POSTAL_CODE = "postal_code", "郵便番号"
        ADDRESS = "address", "住所"
        COUNT = "count", "件数"
        BOOLEAN = "boolean", "真偽"
        TEXT = "text", "テキスト"

    name = models.CharField("変数名", max_length=80, unique=True)
    label = models.CharField("表示名", max_length=80, blank=True)
    description = models.TextField("説明")
    examples = models.JSONField("例", default=list, blank=True)
    validation_type = models.CharField("検証タイプ", max_length=12, choices=ValidationType.choices,
                                       default=ValidationType.TEXT)
    category = models.CharField("カテゴリ", max_length=40, blank=True)
    topic = models.CharField("トピック", max_length=40, blank=True)
    field = models.CharField("項目", max_length=40, blank=True)

    class Meta:
        verbose_name = "変数定義"
        verbose_name_plural = "変数定義"
        ordering = ["category", "name"]

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """A service template (国民健康保険, 粗大ごみ, ...): ``key`` (``kokuho``), its Japanese
    ``name``, ``category`` and the variables it needs."""

    key = models.SlugField("サービスID", max_length=60, unique=True)
    name = models.CharField("サービス名", max_length=80)
    category = models.CharField("カテゴリ", max_length=40, blank=True)
    description = models.TextField("説明", blank=True)
    variables = models.ManyToManyField(VariableDefinition, related_name="services", verbose_name="変数",
                                       blank=True)

    class Meta:
        verbose_name = "サービス"
        verbose_name_plural = "サービス"
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class Draft(models.Model):
    """The draft of one service for one municipality (document 003 §6.1, issue 10 §1).

    variables: ``{name: {value, raw, quote, source_url, confidence, method (rule|ai|manual),
    extracted_at (ISO 8601 UTC), validated (bool), review ("" | approved | rejected)}}``.
    missing_variables: names without a value. errors: ``[{"step", "url", "message"}]`` of the
    last run (Japanese messages). search_attempts: searches made for it in all; queries: the
    last run's queries. sources: ``[{"url", "sha256", "method", "fetched_at"}]`` of the pages read.
    version: the number of the latest ``DraftVersion``. A value whose method is manual is the
    editor's and is never overwritten by a run.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "下書き"
        APPROVED = "approved", "承認済み"
        REJECTED = "rejected", "却下"

    municipality = models.ForeignKey(Municipality, on_delete=models.CASCADE, related_name="drafts",
                                     verbose_name="自治体")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="drafts", verbose_name="サービス")
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.DRAFT)
    variables = models.JSONField("変数", default=dict, blank=True)
    missing_variables = models.JSONField("未取得の変数", default=list, blank=True)
    errors = models.JSONField("エラー", default=list, blank=True)
    search_attempts = models.IntegerField("検索試行回数", default=0)
    queries = models.JSONField("検索クエリ", default=list, blank=True)
    sources = models.JSONField("取得元", default=list, blank=True)
    version = models.IntegerField("版", default=0)
    reviewed_by = models.CharField("承認者", max_length=150, blank=True)
    reviewed_at = models.DateTimeField("承認日時", null=True, blank=True)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "下書き"
        verbose_name_plural = "下書き"
        ordering = ["municipality__lgcode", "service__key"]
        constraints = [models.UniqueConstraint(fields=["municipality", "service"], name="draft_unique")]

    def __str__(self) -> str:
        return f"{self.municipality.name} / {self.service.name}"

    @property
    def filled_count(self) -> int:
        return sum(1 for item in self.variables.values() if item.get("value") not in (None, ""))

    @property
    def missing_count(self) -> int:
        return len(self.missing_variables)

    def to_export(self) -> dict[str, Any]:
        """The §6.1 JSON of this draft (plus raw, quote, method, validated, review per value)."""
        return {
            "municipality_id": self.municipality.slug or self.municipality.lgcode,
            "lgcode": self.municipality.lgcode,
            "municipality": self.municipality.name,
            "prefecture": self.municipality.prefecture,
            "service": self.service.key,
            "status": self.status,
            "version": self.version,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "variables": self.variables,
            "missing_variables": self.missing_variables,
            "errors": self.errors,
            "search_attempts": self.search_attempts,
        }


class DraftVersion(models.Model):
    """One state of a draft: its values then, and what changed from the previous version.

    changes: ``[{"variable", "before", "after", "kind": added|changed|removed}]`` (values, not
    page hashes: §4.2). reason: run | update | edit | review.
    """

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="versions", verbose_name="下書き")
    number = models.IntegerField("版")
    reason = models.CharField("理由", max_length=20)
    variables = models.JSONField("変数", default=dict)
    missing_variables = models.JSONField("未取得の変数", default=list)
    changes = models.JSONField("変更点", default=list)
    created_by = models.CharField("作成者", max_length=150, blank=True)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)

    class Meta:
        verbose_name = "下書きの版"
        verbose_name_plural = "下書きの版"
        ordering = ["draft", "number"]
        constraints = [models.UniqueConstraint(fields=["draft", "number"], name="draft_version_unique")]

    def __str__(self) -> str:
        return f"{self.draft} v{self.number}"


class MunicipalRun(models.Model):
    """A municipality run: the core.jobs Job (kind ``municipal.run``, one chunk per service) and
    its municipality, so ``/fetch/status`` and ``--resume`` find the latest run."""

    municipality = models.ForeignKey(Municipality, on_delete=models.CASCADE, related_name="runs",
                                     verbose_name="自治体")
    job = models.OneToOneField("core.Job", on_delete=models.CASCADE, related_name="municipal_run",
                               verbose_name="ジョブ")
    trigger = models.CharField("起動元", max_length=20, default="cli")
    created_at = models.DateTimeField("作成日時", auto_now_add=True)

    class Meta:
        verbose_name = "取得ジョブ"
        verbose_name_plural = "取得ジョブ"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.municipality.name}: {self.job.get_status_display()}"


class PageExtraction(models.Model):
    """What extraction read from one page text for a set of variables (§4.2: an unchanged page
    costs no LLM call). text_sha256: SHA-256 of the page text; variables_key: SHA-256 of the
    sorted variable names, the extractor's code fingerprint and the LLM (provider:model, or
    "rules"); values: ``{name: value dict}`` as in ``Draft.variables``."""

    url = models.URLField("URL", max_length=2000)
    text_sha256 = models.CharField("本文のSHA-256", max_length=64)
    variables_key = models.CharField("変数の組", max_length=64)
    values = models.JSONField("抽出値", default=dict)
    llm_calls = models.IntegerField("LLM呼び出し", default=0)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)

    class Meta:
        verbose_name = "ページ抽出結果"
        verbose_name_plural = "ページ抽出結果"
        constraints = [models.UniqueConstraint(fields=["text_sha256", "variables_key", "url"],
                                               name="page_extraction_unique")]


class DocumentText(models.Model):
    """The text of a PDF or image, by URL (§9.2: the file name is the URL's SHA-256).

    method: text_layer | ocr | mixed; pages: page count; content_sha256: of the bytes."""

    url_sha256 = models.CharField("URLのSHA-256", max_length=64, unique=True)
    url = models.URLField("URL", max_length=2000)
    content_sha256 = models.CharField("内容のSHA-256", max_length=64)
    text = models.TextField("テキスト", blank=True)
    method = models.CharField("方式", max_length=12)
    pages = models.IntegerField("ページ数", default=0)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "文書テキスト（OCR）"
        verbose_name_plural = "文書テキスト（OCR）"


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
