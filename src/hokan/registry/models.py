"""The local company registry: one row per company, filled from public registries.

Sources: the FSA's EDINET code list, gBizINFO-style CSVs and the gBizINFO REST API v2
(``import_registry.py``, ``gbizinfo.py``). Several sources may describe the same company; they
are merged into one row (identified by 法人番号, else EDINET code, else normalised name and
prefecture), and ``evidence`` keeps, per column, which source gave the value and the text it
was read from, so every value can be quoted with its origin.
"""

from __future__ import annotations

from django.db import models

from hokan.core.models import CompanyNameKeyMixin

EDINET_URL = "https://disclosure2.edinet-fsa.go.jp/"
GBIZINFO_URL = "https://info.gbiz.go.jp/hojin/ichiran?hojinBango={number}"


class CompanyRecord(CompanyNameKeyMixin, models.Model):
    """A company as public registries describe it. Amounts in JPY (int), years western.

    evidence: ``{column: {"source": "edinet"|"gbizinfo_csv"|"gbizinfo_api", "raw": str,
    "quote": str}}`` — the text each stored value was parsed from (e.g. capital:
    ``{"source": "edinet", "raw": "1491", "quote": "資本金 1491（百万円）"}``).
    raw: ``{source: {header: cell}}``, the last row each source supplied, as published.
    """

    class Source(models.TextChoices):
        EDINET = "edinet", "EDINET コードリスト"
        GBIZINFO_CSV = "gbizinfo_csv", "gBizINFO（CSV）"
        GBIZINFO_API = "gbizinfo_api", "gBizINFO（API）"

    corporate_number = models.CharField(
        "法人番号", max_length=13, unique=True, null=True, blank=True, help_text="13桁（チェックデジット検証済み）"
    )
    name = models.CharField("企業名", max_length=255)
    name_key = models.CharField(
        "照合用の社名", max_length=255, db_index=True, editable=False,
        help_text="法人格・空白・全角半角を除いた社名（hokan.core.ja.company_name_key）",
    )
    address = models.CharField("所在地（原文）", max_length=500, blank=True)
    prefecture = models.CharField("都道府県", max_length=4, blank=True)
    city = models.CharField("市区町村", max_length=100, blank=True)
    location = models.CharField("所在地", max_length=255, blank=True, help_text="市区町村より後の町名・番地・建物名")
    postal_code = models.CharField("郵便番号", max_length=8, blank=True)
    capital = models.BigIntegerField("資本金（円）", null=True, blank=True)
    employee_count = models.IntegerField("従業員数", null=True, blank=True)
    established_year = models.IntegerField("設立年", null=True, blank=True)
    industry = models.CharField("業種", max_length=100, blank=True)
    website_url = models.URLField("公式サイト", max_length=500, blank=True)
    representative_name = models.CharField("代表者名", max_length=100, blank=True)
    representative_title = models.CharField("代表者役職", max_length=100, blank=True)
    phone = models.CharField("電話番号", max_length=20, blank=True)
    edinet_code = models.CharField("EDINETコード", max_length=6, unique=True, null=True, blank=True)
    securities_code = models.CharField("証券コード", max_length=5, blank=True)
    listed = models.BooleanField("上場", null=True, blank=True)
    source = models.CharField("最終更新の出典", max_length=20, choices=Source.choices)
    source_file = models.CharField("出典ファイル・URL", max_length=500, blank=True)
    evidence = models.JSONField("項目ごとの出典", default=dict, blank=True)
    raw = models.JSONField("元データ", default=dict, blank=True)
    imported_at = models.DateTimeField("取り込み日時", auto_now_add=True)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "企業台帳"
        verbose_name_plural = "企業台帳"
        indexes = [
            # match.match_lead: name_key = ? [AND prefecture = ?]
            models.Index(fields=["name_key", "prefecture"], name="registry_name_pref"),
        ]

    def __str__(self) -> str:
        return self.name

    def source_url(self, source: str) -> str | None:
        """The public page of this company in ``source``, or None when it has no page.

        gBizINFO: the 法人 page by 法人番号. EDINET: the EDINET site with the EDINET code as
        fragment (EDINET documents no deep link per submitter; its search form takes the code).
        """
        if source == self.Source.EDINET and self.edinet_code:
            return f"{EDINET_URL}#{self.edinet_code}"
        if source in (self.Source.GBIZINFO_CSV, self.Source.GBIZINFO_API) and self.corporate_number:
            return GBIZINFO_URL.format(number=self.corporate_number)
        return None
