"""Reading the CSV files people bring: the encodings Excel and Japanese agencies write.

Pure (no Django). Used by every importer (lead lists, the company registry, the admin).
"""

from __future__ import annotations

from hokan.core.errors import InputError


def decode_csv(data: bytes, *, source: str = "") -> tuple[str, str]:
    """Decode CSV bytes: (text, encoding name).

    UTF-8 with a BOM ("utf-8-sig"), then UTF-8, then CP932 — Excel's 「CSV」 on Japanese
    Windows and the FSA's EDINET code list are CP932, a superset of Shift_JIS.

    Raises:
        InputError: none of them decodes the bytes (names ``source`` and the byte offset).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "cp932"
    except UnicodeDecodeError as exc:
        raise InputError(
            f"文字コードを判別できません（UTF-8 / Shift_JIS のどちらでもありません: {exc.start} バイト目）",
            source=source,
        ) from None
