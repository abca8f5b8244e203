"""decode_html: BOM -> header charset -> <meta> -> sniff, Shift_JIS as CP932."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from hokan.core.web.charset import decode_html, normalize_charset

# Long enough for the sniffer, with CP932-only characters (①, ㈱) in the CP932 case.
JA = "株式会社サンプル商事 会社概要 所在地 東京都千代田区丸の内一丁目 資本金 1億2,000万円 設立 1998年4月 従業員数 120名"
CP932_ONLY = "㈱サンプル ①営業部 ②製造部 髙橋 代表取締役"


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>会社概要</title></head><body><p>{body}</p></body></html>"


def test_it_decodes_the_real_shift_jis_page_without_any_declaration(company_pages: Path) -> None:
    content = (company_pages / "shinsei_sjis.html").read_bytes()
    text, encoding = decode_html(content)
    assert encoding == "cp932"
    assert "株式会社　新清" in text
    assert "神奈川県厚木市下川入17-1" in text
    assert "\ufffd" not in text


def test_it_ignores_a_meta_charset_inside_a_comment(company_pages: Path) -> None:
    # The page has <!-- <meta ... charset=Shift_JIS> --> before the real <meta charset="UTF-8">.
    content = (company_pages / "daiichi_nihon_sekkotsu.html").read_bytes()
    text, encoding = decode_html(content)
    assert encoding == "utf-8"
    assert "\ufffd" not in text


def test_it_decodes_every_snapshot_page_cleanly(company_pages: Path) -> None:
    for path in sorted(company_pages.rglob("*.html")):
        text, _ = decode_html(path.read_bytes(), "text/html")
        assert "\ufffd" not in text, path.name


@pytest.mark.parametrize("encoding", ["utf-8", "cp932", "euc_jp"])
def test_it_sniffs_undeclared_japanese_pages(encoding: str) -> None:
    html = page(JA)
    text, found = decode_html(html.encode(encoding))
    assert found == encoding
    assert text == html


def test_it_sniffs_cp932_extensions() -> None:
    html = page(JA + CP932_ONLY)
    text, found = decode_html(html.encode("cp932"))
    assert found == "cp932"
    assert text == html


@pytest.mark.parametrize("label", ["Shift_JIS", "shift-jis", "x-sjis", "sjis", "Windows-31J", "MS932"])
def test_it_maps_shift_jis_labels_to_cp932(label: str) -> None:
    assert normalize_charset(label) == "cp932"
    html = page(JA + CP932_ONLY)
    text, found = decode_html(html.encode("cp932"), f"text/html; charset={label}")
    assert found == "cp932"
    assert text == html


def test_it_uses_the_header_charset() -> None:
    html = page(JA)
    text, found = decode_html(html.encode("euc_jp"), 'text/html; charset="EUC-JP"')
    assert (text, found) == (html, "euc_jp")


def test_it_uses_meta_charset() -> None:
    html = page(JA, head='<meta charset="euc-jp">')
    text, found = decode_html(html.encode("euc_jp"), "text/html")
    assert (text, found) == (html, "euc_jp")


def test_it_uses_meta_http_equiv_content_type() -> None:
    html = page(JA, head='<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=Shift_JIS">')
    text, found = decode_html(html.encode("cp932"))
    assert (text, found) == (html, "cp932")


def test_it_prefers_the_header_over_meta() -> None:
    html = page(JA, head='<meta charset="utf-8">')
    text, found = decode_html(html.encode("euc_jp"), "text/html; charset=euc-jp")
    assert (text, found) == (html, "euc_jp")


def test_it_prefers_a_bom_over_everything() -> None:
    html = page(JA, head='<meta charset="shift_jis">')
    text, found = decode_html(codecs.BOM_UTF8 + html.encode("utf-8"), "text/html; charset=euc-jp")
    assert (text, found) == (html, "utf-8")


def test_it_handles_utf16_bom() -> None:
    html = page(JA)
    text, found = decode_html(codecs.BOM_UTF16_LE + html.encode("utf-16-le"))
    assert (text, found) == (html, "utf-16-le")


def test_it_replaces_a_wrong_declaration_by_a_clean_candidate() -> None:
    html = page(JA, head='<meta charset="utf-8">')
    text, found = decode_html(html.encode("cp932"), "text/html; charset=UTF-8")
    assert (text, found) == (html, "cp932")


def test_it_treats_server_default_latin1_as_a_weak_declaration() -> None:
    html = page(JA)
    text, found = decode_html(html.encode("cp932"), "text/html; charset=ISO-8859-1")
    assert (text, found) == (html, "cp932")


def test_it_skips_an_unknown_declared_charset() -> None:
    html = page(JA)
    text, found = decode_html(html.encode("utf-8"), "text/html; charset=no-such-charset")
    assert (text, found) == (html, "utf-8")


def test_it_keeps_the_declared_charset_when_nothing_decodes_cleanly() -> None:
    content = page(JA).encode("utf-8") + b"\xff\xfe\xff broken"
    text, found = decode_html(content, "text/html; charset=utf-8")
    assert found == "utf-8"
    assert JA in text
    assert "\ufffd" in text


def test_it_reads_pure_ascii_as_utf8() -> None:
    assert decode_html(b"<html><body>hello</body></html>") == ("<html><body>hello</body></html>", "utf-8")


def test_it_handles_empty_content() -> None:
    assert decode_html(b"") == ("", "utf-8")


@pytest.mark.parametrize("label", ["base64", "rot13", "utf-7", "unicode_escape", "bad\x00name"])
def test_it_ignores_declarations_that_are_not_web_charsets(label: str) -> None:
    html = page(JA)
    text, found = decode_html(html.encode("cp932"), f"text/html; charset={label}")
    assert (text, found) == (html, "cp932")
