"""A shopper's picture, judged by its content (bot/media/images.py): real pictures pass re-encoded, with
nothing of the original but its pixels; what is not a picture, or is a picture and something else, is refused."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image, PngImagePlugin

from bot.errors import ImageRefusedError
from bot.media.images import MAX_SIDE, check

LIMIT = 5 * 1024 * 1024


def picture(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **params: object) -> bytes:
    out = io.BytesIO()
    im = Image.new(mode, size, (200, 40, 40) if mode == "RGB" else None)
    im.save(out, fmt, **params)
    return out.getvalue()


def a_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("index.html", "<html><script>alert(document.cookie)</script></html>")
    return out.getvalue()


def exif_with_gps_and_rotation() -> bytes:
    im = Image.new("RGB", (80, 40), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turned 90 degrees (a phone held upright)
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 0.0)}  # GPS: where the shopper lives
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, comment=b"taken at home")
    return out.getvalue()


def text_chunk(text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text)
    return picture("PNG", pnginfo=info)


# fmt: off
GOOD = [
    ("png", picture("PNG"), "image/png"),
    ("jpeg", picture("JPEG"), "image/jpeg"),
    ("webp", picture("WEBP"), "image/webp"),
    ("gif: a PNG of its first frame", picture("GIF", mode="P"), "image/png"),
    ("png with transparency", picture("PNG", mode="RGBA"), "image/png"),
    ("a phone's motion photo: a video after the JPEG is dropped", picture("JPEG") + b"\0\0\0\x18ftypmp42" + bytes(64),
     "image/jpeg"),
]
REFUSED = [
    ("empty", b"", "empty"),
    ("text", "亲，这不是图片".encode(), "not_image"),
    ("html", b"<!doctype html><html><script>alert(1)</script></html>", "not_image"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "not_image"),
    ("a zip", a_zip(), "not_image"),
    ("a png cut short", picture("PNG")[:40], "not_image"),
    ("a jpeg's header and garbage", b"\xff\xd8\xff\xe0" + bytes(200), "not_image"),
    ("jpeg + html", picture("JPEG") + b"<html><body><script>alert(1)</script></body></html>", "polyglot"),
    ("jpeg + zip", picture("JPEG") + a_zip(), "polyglot"),
    ("png + anything", picture("PNG") + b"//", "polyglot"),
    ("webp + html", picture("WEBP") + b"<script>alert(1)</script>", "polyglot"),
    ("gif + script after its trailer", picture("GIF", mode="P") + b"*/=alert(document.domain);", "polyglot"),
    ("gif/js: the screen size spells /*", b"GIF89a/*" + picture("GIF", mode="P")[8:], "polyglot"),
    ("markup hidden in a png's text chunk", text_chunk("<script>alert(1)</script>"), "polyglot"),
    ("a jpeg comment holding an iframe", picture("JPEG", comment=b"<iframe src=//evil>"), "polyglot"),
    ("a decompression bomb", picture("PNG", size=(12000, 12000), mode="1"), "too_many_pixels"),
]
# fmt: on


@pytest.mark.parametrize(("what", "data", "content_type"), GOOD, ids=[g[0] for g in GOOD])
def test_pictures_pass_re_encoded(what: str, data: bytes, content_type: str) -> None:
    out = check(data, LIMIT)
    assert out.content_type == content_type
    with Image.open(io.BytesIO(out.data)) as im:
        im.load()
        assert (im.width, im.height) == (out.width, out.height) == (64, 48)
        assert Image.MIME[im.format] == content_type
    assert b"ftyp" not in out.data  # whatever followed the image stayed behind


@pytest.mark.parametrize(("what", "data", "kind"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_is_not_only_a_picture_is_refused(what: str, data: bytes, kind: str) -> None:
    with pytest.raises(ImageRefusedError) as refused:
        check(data, LIMIT)
    assert refused.value.kind == kind, str(refused.value)


def test_too_large_is_refused_before_it_is_read() -> None:
    with pytest.raises(ImageRefusedError) as refused:
        check(picture("PNG"), 100)
    assert refused.value.kind == "too_large"


def test_metadata_goes_and_the_orientation_is_applied() -> None:
    data = exif_with_gps_and_rotation()
    out = check(data, LIMIT)
    with Image.open(io.BytesIO(out.data)) as im:
        assert (im.width, im.height) == (40, 80)  # turned as the camera meant
        assert not im.getexif() and "comment" not in im.info
    assert b"taken at home" not in out.data


def test_a_big_photo_is_scaled_down() -> None:
    out = check(picture("JPEG", size=(4000, 3000)), LIMIT)
    assert max(out.width, out.height) == MAX_SIDE and out.width / out.height == pytest.approx(4 / 3, abs=0.01)
