"""The quotation PDF (概算お見積書) of design document 004 §9 (reportlab, IPAex fonts).

``render_quotation(estimate, contact, issued_on=..., issuer=...) -> bytes`` lays out an A4
page the way Japanese companies send quotations: title, quotation number and date, the
customer (御中 / 様) on the left and the issuer on the right, the project name, the total
in a box, the table of features with standard and hybrid prices, totals, notes (confidence,
validity, tax) and the discussion agenda. Amounts are JPY, tax excluded (税別). Every page has
a footer with the quotation number, the addressee and 「n / N」; pages after the first a
running head 「概算お見積書（続き）」 with the number (the table's header row repeats).

Fonts: IPAexゴシック / IPAex明朝 from Debian ``fonts-ipaexfont`` (apt-packages.txt), embedded
as TrueType subsets so the text is extractable.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from hokan.core.errors import HokanError

FONT_DIRS = (Path("/usr/share/fonts/opentype/ipaexfont-gothic"), Path("/usr/share/fonts/opentype/ipaexfont-mincho"),
             Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf").parent)
GOTHIC, MINCHO = "IPAexGothic", "IPAexMincho"
NAVY = colors.HexColor("#1f3a5f")
LIGHT = colors.HexColor("#eef2f7")


class PdfError(HokanError):
    """The quotation could not be rendered (e.g. the Japanese font is missing)."""


@dataclass(frozen=True)
class Issuer:
    name: str
    address: str = ""
    contact: str = ""


@cache
def _register_fonts() -> None:
    found = {}
    for name, filename in ((GOTHIC, "ipaexg.ttf"), (MINCHO, "ipaexm.ttf")):
        for folder in FONT_DIRS:
            if (folder / filename).is_file():
                found[name] = folder / filename
                break
    if GOTHIC not in found:
        raise PdfError("日本語フォント(IPAexゴシック)が見つかりません。fonts-ipaexfont をインストールしてください")
    for name, path in found.items():
        pdfmetrics.registerFont(TTFont(name, str(path)))
    if MINCHO not in found:
        pdfmetrics.registerFont(TTFont(MINCHO, str(found[GOTHIC])))


def _yen(amount: Any) -> str:
    return f"¥{int(amount):,}"


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=GOTHIC, fontSize=9, leading=13.5, wordWrap="CJK")
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=12, textColor=colors.HexColor("#333333")),
        "title": ParagraphStyle("title", parent=base, fontName=MINCHO, fontSize=22, leading=28, alignment=TA_CENTER,
                                spaceAfter=2),
        "right": ParagraphStyle("right", parent=base, alignment=TA_RIGHT),
        "customer": ParagraphStyle("customer", parent=base, fontName=MINCHO, fontSize=14, leading=20),
        "issuer": ParagraphStyle("issuer", parent=base, fontSize=9, leading=14),
        "issuer_name": ParagraphStyle("issuer_name", parent=base, fontSize=12, leading=17),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=12),
        "cell_b": ParagraphStyle("cell_b", parent=base, fontSize=9, leading=12.5),
        "head": ParagraphStyle("head", parent=base, fontSize=10.5, leading=15, textColor=NAVY, spaceBefore=6,
                               spaceAfter=3),
    }


class _NumberedCanvas(Canvas):
    """A canvas that writes, on every page, a footer with the quotation number and 「n / N」
    (N known only at the end, so pages are kept until ``save``), and on every page after the
    first a running head 「概算お見積書（続き）」 with the number, so a loose page 2 still says
    which quotation it belongs to."""

    quotation_no = ""
    addressee = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 - reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._decorate(number, total)
            super().showPage()
        super().save()

    def _decorate(self, number: int, total: int) -> None:
        width, height = A4
        left, right = 18 * mm, width - 18 * mm
        self.saveState()
        self.setFillColor(colors.HexColor("#555555"))
        self.setStrokeColor(colors.HexColor("#9aa8b8"))
        self.setLineWidth(0.4)
        self.line(left, 12 * mm, right, 12 * mm)
        self.setFont(GOTHIC, 7.5)
        footer = f"概算お見積書　見積番号: {self.quotation_no}"
        if self.addressee:
            footer += f"　{self.addressee}"
        self.drawString(left, 8.5 * mm, footer)
        self.drawRightString(right, 8.5 * mm, f"{number} / {total}")
        if number > 1:
            self.setFont(GOTHIC, 8)
            self.drawString(left, height - 10 * mm, "概算お見積書（続き）")
            self.drawRightString(right, height - 10 * mm, f"見積番号: {self.quotation_no}")
            self.line(left, height - 11.5 * mm, right, height - 11.5 * mm)
        self.restoreState()


def quotation_number(estimate_id: Any, issued_on: date) -> str:
    """``EST-20261121-1A2B3C`` from the issue date and the estimate id."""
    return f"EST-{issued_on:%Y%m%d}-{str(estimate_id).replace('-', '')[:6].upper()}"


def render_quotation(estimate: dict[str, Any], contact: dict[str, str], *, estimate_id: Any = "",
                     issued_on: date | None = None, issuer: Issuer | None = None, validity_days: int = 30) -> bytes:
    """The quotation as PDF bytes. ``estimate``: the enforced §6.4 JSON; ``contact``: step 13.

    Raises:
        PdfError: the Japanese font is missing.
    """
    _register_fonts()
    issued_on = issued_on or date.today()
    issuer = issuer or Issuer("CloudNature")
    st = _styles()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title="概算お見積書", author=issuer.name,
                            subject=str(estimate.get("project_name", "")))
    width = A4[0] - 36 * mm
    story: list[Any] = []

    meta = Table(
        [[Paragraph(f"見積番号: {escape(quotation_number(estimate_id, issued_on))}", st["right"])],
         [Paragraph(f"発行日: {issued_on.year}年{issued_on.month}月{issued_on.day}日", st["right"])]],
        colWidths=[width],
    )
    meta.setStyle(TableStyle([("BOTTOMPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 0)]))
    story += [meta, Spacer(1, 4 * mm), Paragraph("概算お見積書", st["title"])]
    rule = Table([[""]], colWidths=[width * 0.5], rowHeights=[1])
    rule.setStyle(TableStyle([("LINEABOVE", (0, 0), (-1, -1), 1.2, NAVY)]))
    story += [rule, Spacer(1, 6 * mm)]

    company, name = contact.get("company", ""), contact.get("name", "")
    names = []
    if company:
        names.append([Paragraph(f"{escape(company)}　{'' if name else '御中'}", st["customer"])])
    if name:
        names.append([Paragraph(f"{escape(name)}　様", st["customer"])])
    if not names:
        names.append([Paragraph("お客様", st["customer"])])
    addressee = Table(names, colWidths=[width * 0.55])
    addressee.setStyle(TableStyle([("LINEBELOW", (0, -1), (-1, -1), 0.8, colors.black),
                                   ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    customer_lines: list[Any] = [addressee, Spacer(1, 3 * mm),
                       Paragraph("下記のとおり概算お見積もりを申し上げます。", st["base"])]
    issuer_lines = [Paragraph(escape(issuer.name), st["issuer_name"])]
    if issuer.address:
        issuer_lines.append(Paragraph(escape(issuer.address), st["issuer"]))
    if issuer.contact:
        issuer_lines.append(Paragraph(escape(issuer.contact), st["issuer"]))
    seal = Table([[Paragraph("承認", st["small"]), Paragraph("担当", st["small"])], ["", ""]],
                 colWidths=[16 * mm, 16 * mm], rowHeights=[5 * mm, 15 * mm])
    seal.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#666666")),
                              ("ALIGN", (0, 0), (-1, 0), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                              ("TOPPADDING", (0, 0), (-1, 0), 0), ("BOTTOMPADDING", (0, 0), (-1, 0), 1)]))
    seal.hAlign = "RIGHT"
    issuer_lines += [Spacer(1, 3 * mm), seal]
    head = Table([[customer_lines, issuer_lines]], colWidths=[width * 0.6, width * 0.4])
    head.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    story += [head, Spacer(1, 6 * mm)]

    total = estimate.get("total_cost") or {}
    summary_rows = [
        [Paragraph("件名", st["cell_b"]), Paragraph(escape(str(estimate.get("project_name", ""))), st["cell_b"])],
        [Paragraph("お見積金額（標準開発）", st["cell_b"]),
         Paragraph(f"<font size=14>{_yen(total.get('standard', 0))}</font>　（税別）", st["cell_b"])],
        [Paragraph("お見積金額（ハイブリッド開発）", st["cell_b"]),
         Paragraph(f"<font size=14>{_yen(total.get('hybrid', 0))}</font>　（税別）", st["cell_b"])],
        [Paragraph("有効期限", st["cell_b"]),
         Paragraph(f"発行日より{validity_days}日間（{(issued_on + timedelta(days=validity_days)):%Y年%m月%d日}まで）",
                   st["cell_b"])],
    ]
    box = Table(summary_rows, colWidths=[width * 0.32, width * 0.68])
    box.setStyle(TableStyle([
        ("BOX", (0, 0), (-1, -1), 1, NAVY), ("INNERGRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9aa8b8")),
        ("BACKGROUND", (0, 0), (0, -1), LIGHT), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 5), ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
    ]))
    story += [box, Spacer(1, 6 * mm), Paragraph("お見積明細", st["head"])]

    rows: list[list[Any]] = [[Paragraph(h, st["cell_b"]) for h in ("No.", "機能名", "内容", "標準開発", "ハイブリッド開発")]]
    for i, feature in enumerate(estimate.get("features") or [], start=1):
        rows.append([
            Paragraph(str(i), st["cell"]),
            Paragraph(escape(str(feature.get("name", ""))), st["cell"]),
            Paragraph(escape(str(feature.get("detail", ""))), st["cell"]),
            Paragraph(_yen(feature.get("standard_price", 0)), st["right"]),
            Paragraph(_yen(feature.get("hybrid_price", 0)), st["right"]),
        ])
    rows.append(["", Paragraph("合計（税別）", st["cell_b"]), "",
                 Paragraph(_yen(total.get("standard", 0)), st["right"]),
                 Paragraph(_yen(total.get("hybrid", 0)), st["right"])])
    table = Table(rows, colWidths=[width * 0.05, width * 0.21, width * 0.38, width * 0.17, width * 0.19], repeatRows=1)
    last = len(rows) - 1
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), NAVY), ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9aa8b8")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("SPAN", (1, last), (2, last)), ("BACKGROUND", (0, last), (-1, last), LIGHT),
        ("LINEABOVE", (0, last), (-1, last), 1, NAVY),
        ("ROWBACKGROUNDS", (0, 1), (-1, last - 1), [colors.white, colors.HexColor("#f8fafc")]),
    ]))
    # Header cells are white text on navy: Paragraph colours must be set per cell.
    for cell in rows[0]:
        cell.style = ParagraphStyle("h", parent=st["cell_b"], textColor=colors.white)
    story += [table, Spacer(1, 5 * mm)]

    range_label = str((estimate.get("confidence") or {}).get("range_label", ""))
    confidence_note = str(estimate.get("confidence_note", ""))
    if range_label and range_label not in confidence_note:
        confidence_note = f"（見積精度 {range_label}）{confidence_note}"
    notes = [
        f"・{escape(confidence_note)}",
        f"・{escape(str(estimate.get('development_model_explanation', '')))}",
        "・金額はすべて税別です。消費税は別途申し受けます。",
        "・本見積もりはアンケートのご回答をもとにした概算です。正式なお見積もりは、お打ち合わせで要件を確認したうえでご提出いたします。",
    ]
    message = (estimate.get("total_cost") or {}).get("message")
    if message:
        notes.insert(1, f"・{escape(str(message))}")
    story.append(KeepTogether([Paragraph("備考", st["head"]), *[Paragraph(n, st["small"]) for n in notes]]))
    agenda = estimate.get("discussion_agenda") or []
    if agenda:
        story.append(KeepTogether([Paragraph("お打ち合わせで確認させていただきたい事項", st["head"]),
                                   *[Paragraph(f"{i}. {escape(str(a))}", st["small"]) for i, a in enumerate(agenda, 1)]]))
    quotation_no = quotation_number(estimate_id, issued_on)
    if name:
        addressee = f"{company} {name} 様" if company else f"{name} 様"
    else:
        addressee = f"{company} 御中" if company else ""
    canvas_class = type("QuotationCanvas", (_NumberedCanvas,), {"quotation_no": quotation_no, "addressee": addressee})
    doc.build(story, canvasmaker=canvas_class)
    return buffer.getvalue()
