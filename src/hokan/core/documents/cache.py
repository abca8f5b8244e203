"""The document cache: one JSON file per (content, reading options) under ``HOKAN_DATA_DIR``.

Path: ``$HOKAN_DATA_DIR/documents/<sha256 of the bytes>.<key>.json`` where ``key`` is the first
16 hex digits of the SHA-256 of everything that changes the result: the OCR mode, the render
resolution, the PDF library's version, and each configured OCR engine's ``describe()`` (name,
package and model versions, options). The same file read with another engine, or after an
upgrade of one, is read again. Files are written whole (temporary file, then rename), so a
reader never sees half a file; an unreadable cache file is ignored and written again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the stored shape changes


def cache_dir() -> Path:
    from django.conf import settings

    return Path(settings.HOKAN_DATA_DIR) / "documents"


def options_key(options: dict[str, Any]) -> str:
    text = json.dumps({"format": FORMAT, **options}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def path_for(folder: Path, sha256: str, key: str) -> Path:
    return folder / f"{sha256}.{key}.json"


def load(path: Path) -> dict[str, Any] | None:
    """The stored document, or None when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("document cache: ignoring unreadable %s (%s)", path, exc)
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def store(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` (plus the format number) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"format": FORMAT, **data}, out, ensure_ascii=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
