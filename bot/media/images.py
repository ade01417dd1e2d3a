"""A shopper's picture, judged by what it is, never by what it claims (its name or its Content-Type).

1. Its first bytes: JPEG, PNG, GIF or WebP, nothing else (no SVG, no HTML: nothing a browser runs).
2. Its structure, read to the image's end: bytes after it (a ZIP, an HTML page or a script appended to
   make a polyglot) refuse a PNG, a GIF or a WebP; a JPEG's trailer is refused when it holds markup, an
   archive or a PDF, and otherwise dropped (phones append a motion photo's video there). Markup anywhere
   in the file (hidden in a comment or in EXIF) refuses it too, and so does a GIF whose screen size
   spells the opening of a JavaScript comment (the GIF/JS polyglot's trick).
3. Decoded whole by Pillow, at most MAX_PIXELS.
4. Re-encoded from its pixels alone, turned as the camera meant (EXIF orientation) and at most MAX_SIDE
   wide or high: metadata (a phone's GPS position), comments and anything hidden in them or after the
   image are gone. A GIF becomes a PNG of its first frame.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from bot.errors import ImageRefusedError

MAX_PIXELS = 50_000_000  # a 48-megapixel phone photo passes; a decompression bomb does not
MAX_SIDE = 2560  # what an agent needs to see a scratch; a bigger picture is scaled down
JPEG_QUALITY = 88
# Markup and script a browser would run, anywhere in the file (case-insensitive).
# Long enough that a photo's compressed bytes spell one about once in thousands of 5 MB files.
MARKUP = re.compile(rb"<(script|html|body|svg[\s>]|iframe|object|embed|img\s|!doctype|\?php|\?xml)|javascript:"
                    rb"|on(error|load)\s*=", re.I)
# What must not follow a JPEG: markup, a ZIP (local header, central directory, end record), a PDF.
ARCHIVE = re.compile(rb"PK\x03\x04|PK\x01\x02|PK\x05\x06|%PDF-")
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}


@dataclass(frozen=True)
class CleanPicture:
    """A picture as kefu keeps it: re-encoded bytes, their type and size in pixels."""

    data: bytes
    content_type: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return next(ext for mime, ext in FORMATS.values() if mime == self.content_type)


def sniff(data: bytes) -> str | None:
    """The format the first bytes announce (Pillow's name for it), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check(data: bytes, max_bytes: int) -> CleanPicture:
    """The picture re-encoded, or ImageRefusedError saying why not."""
    if not data:
        raise ImageRefusedError("empty", "the body is empty; send the picture's bytes")
    if len(data) > max_bytes:
        raise ImageRefusedError("too_large", f"the picture is over {max_bytes} bytes")
    kind = sniff(data)
    if kind is None:
        raise ImageRefusedError("not_image", "not a JPEG, PNG, GIF or WebP picture")
    end = END[kind](data)
    tail = data[end:]
    if tail and (kind != "JPEG" or MARKUP.search(tail) or ARCHIVE.search(tail)):
        raise ImageRefusedError("polyglot", f"{len(tail)} bytes follow the {kind} picture's end")
    if MARKUP.search(data) or (kind == "GIF" and data[6:8] == b"/*"):
        raise ImageRefusedError("polyglot", f"the {kind} picture carries markup or script")
    return _reencode(data, kind)


def _reencode(data: bytes, kind: str) -> CleanPicture:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(io.BytesIO(data), formats=[kind]) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageRefusedError("too_many_pixels", f"over {MAX_PIXELS} pixels")
                if kind == "JPEG":
                    im.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decoded at a half, a quarter... when that suffices
                im.load()
                return _encode(ImageOps.exif_transpose(im), kind)
    except ImageRefusedError:
        raise
    except Image.DecompressionBombError:
        raise ImageRefusedError("too_many_pixels", f"over {MAX_PIXELS} pixels") from None
    except Exception as exc:  # Pillow's errors are many (OSError, SyntaxError, ValueError, struct.error...)
        raise ImageRefusedError("not_image", f"the {kind} picture cannot be decoded ({type(exc).__name__})") from None


def _encode(im: Image.Image, kind: str) -> CleanPicture:
    alpha = kind != "JPEG" and (im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info)
    pixels = im.convert("RGBA" if alpha else "RGB")
    pixels.info.clear()  # nothing of the original goes along: no EXIF, ICC, comment or text chunk
    pixels.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    fmt = kind if kind in FORMATS else "PNG"
    if fmt == "JPEG":
        pixels.save(out, "JPEG", quality=JPEG_QUALITY)
    elif fmt == "WEBP":
        pixels.save(out, "WEBP", quality=JPEG_QUALITY)
    else:
        pixels.save(out, "PNG")
    return CleanPicture(out.getvalue(), FORMATS[fmt][0], pixels.width, pixels.height)


# -- where each format's image ends ------------------------------------------------------------
def _truncated(kind: str) -> ImageRefusedError:
    return ImageRefusedError("not_image", f"the {kind} picture is cut short or malformed")


def _png_end(data: bytes) -> int:
    """After the IEND chunk (length, type, data, CRC for each chunk)."""
    pos = 8
    while pos + 12 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos
    raise _truncated("PNG")


def _sub_blocks(data: bytes, pos: int) -> int:
    """After a GIF's data sub-blocks (each a size byte and that many bytes, ended by a 0)."""
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    raise _truncated("GIF")


def _gif_end(data: bytes) -> int:
    """After the trailer (0x3B), past the colour tables, images and extensions."""
    if len(data) < 13:
        raise _truncated("GIF")
    pos = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:
            return pos + 1
        if block == 0x21:  # an extension: its label, then sub-blocks
            pos = _sub_blocks(data, pos + 2)
        elif block == 0x2C and pos + 10 < len(data):  # an image: descriptor, colour table, LZW size, data
            flags = data[pos + 9]
            pos = _sub_blocks(data, pos + 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0) + 1)
        else:
            break
    raise _truncated("GIF")


def _webp_end(data: bytes) -> int:
    """RIFF's own length: 8 bytes of header and the size it gives (even)."""
    size = int.from_bytes(data[4:8], "little")
    end = 8 + size + (size & 1)
    if end > len(data):
        raise _truncated("WebP")
    return end


def _jpeg_end(data: bytes) -> int:
    """After the EOI marker: segments by their lengths, entropy-coded data to the next real marker."""
    pos, n = 2, len(data)
    while pos + 1 < n:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # a scan: its data runs to a 0xFF that is neither stuffed (00) nor a restart
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    raise _truncated("JPEG")
                follower = data[pos + 1]
                if follower == 0 or 0xD0 <= follower <= 0xD7:
                    pos += 2
                elif follower == 0xFF:
                    pos += 1
                else:
                    break
    raise _truncated("JPEG")


END = {"JPEG": _jpeg_end, "PNG": _png_end, "GIF": _gif_end, "WEBP": _webp_end}
