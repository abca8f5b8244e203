"""Images (PNG, JPEG, WebP, TIFF, GIF, BMP) opened safely with Pillow, frame by frame.

``Image.open`` reads only the header; the size and the frame count are checked against the
limits before any pixel is decoded, so a small file declaring 30000 x 30000 pixels (an image
bomb) is refused without allocating them. Pillow's own guard (``Image.MAX_IMAGE_PIXELS``,
``DecompressionBombError`` above twice that) is translated to the same error. Each frame is
turned upright from its EXIF orientation (photos of notices) and made RGB on white (a
transparent screenshot keeps its text readable).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hokan.core.documents.limits import DocumentLimits
from hokan.core.errors import DocumentTooLarge, DocumentUnreadable

if TYPE_CHECKING:
    from PIL import Image

FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "GIF", "BMP")


def open_image(data: bytes, *, source: str, limits: DocumentLimits) -> Image.Image:
    """The image in ``data``, header read and checked, pixels not decoded yet.

    Raises:
        DocumentUnreadable: not an image of ``FORMATS`` (reason "format").
        DocumentTooLarge: too many pixels or frames.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DocumentTooLarge(
            f"{source}: 画像が大きすぎます（画素数が Pillow の上限を超えています、上限 {limits.max_pixels:,} 画素）",
            source=source, limit="pixels", maximum=limits.max_pixels, actual=None,
        ) from exc  # fmt: skip
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DocumentUnreadable(
            f"{source}: 対応していない形式です（PDF か画像 {'/'.join(FORMATS)} のみ読めます）",
            source=source, reason="format",
        ) from exc  # fmt: skip
    limits.check_pixels(source, image.width, image.height)
    limits.check_pages(source, getattr(image, "n_frames", 1))
    return image


def frames(image: Image.Image, *, source: str) -> Iterator[Image.Image]:
    """Each frame of ``image`` as an upright RGB image (decoded here, one at a time).

    Raises:
        DocumentUnreadable: the pixel data is truncated or corrupt (reason "corrupt").
    """
    from PIL import Image as PILImage
    from PIL import ImageOps

    for index in range(getattr(image, "n_frames", 1)):
        try:
            image.seek(index)
            frame = ImageOps.exif_transpose(image)
            frame.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise DocumentUnreadable(
                f"{source}: 画像が壊れているか途中で切れています（{index + 1} 枚目）", source=source, reason="corrupt"
            ) from exc
        if frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info):
            rgba = frame.convert("RGBA")
            flat = PILImage.new("RGB", rgba.size, "white")
            flat.paste(rgba, mask=rgba.getchannel("A"))
            yield flat
        else:
            yield frame.convert("RGB")
