"""One decode path for everything: orientation, colour modes, crop, and clear errors."""

import io

import numpy as np
import pytest
from PIL import Image

from shoulders.data import images
from shoulders.data.images import ImageDecodeError, decode_many, fit_to_size, load_image


def _save(tmp_path, name, image, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def test_cmyk_jpeg_keeps_its_colours(tmp_path):
    path = _save(tmp_path, "red.jpg", Image.new("RGB", (40, 40), (255, 0, 0)).convert("CMYK"), quality=95)
    assert Image.open(path).mode == "CMYK"
    pixel = load_image(path, 16)[8, 8]
    assert pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def test_rgba_png_transparency_becomes_white(tmp_path):
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[:10, :, :] = (0, 0, 255, 255)  # opaque blue top half, fully transparent bottom half
    path = _save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA"))
    out = load_image(path)
    assert tuple(out[2, 2]) == (0, 0, 255)
    assert tuple(out[15, 15]) == (255, 255, 255)


def test_sixteen_bit_png_uses_the_full_range(tmp_path):
    gradient = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = _save(tmp_path, "deep.png", Image.fromarray(gradient))
    assert Image.open(path).mode.startswith("I")
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (64, 64, 3)
    assert out.min() == 0 and out.max() == 255
    assert 100 < out.mean() < 155  # a gradient, not clipped to white


def test_palette_and_grayscale_and_bilevel_become_rgb(tmp_path):
    for mode in ("P", "L", "1", "LA"):
        path = _save(tmp_path, f"{mode}.png", Image.new("RGB", (10, 12), (10, 200, 30)).convert(mode))
        assert load_image(path).shape == (12, 10, 3)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)  # wide image, left half white
    pixels[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    path = _save(tmp_path, "rotated.jpg", Image.fromarray(pixels), exif=exif, quality=95)
    out = load_image(path)
    assert out.shape == (40, 20, 3)  # displayed upright: tall
    assert out[5, 10].mean() > 200 and out[35, 10].mean() < 50  # the white half is now on top


def test_one_pixel_png_is_upscaled(tmp_path):
    path = _save(tmp_path, "dot.png", Image.new("RGB", (1, 1), (9, 99, 199)))
    out = load_image(path, 8)
    assert out.shape == (8, 8, 3) and tuple(out[4, 4]) == (9, 99, 199)


def test_truncated_jpeg_and_text_file_raise_errors_naming_the_file(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(buffer.getvalue()[:300])
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        load_image(broken)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(ImageDecodeError, match="notes.jpg.*JPEG or PNG"):
        load_image(text)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    path = _save(tmp_path, "big.png", Image.new("RGB", (300, 300)))
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    with pytest.raises(ImageDecodeError, match="too many pixels"):
        load_image(path)


def test_centre_crop_keeps_aspect_ratio():
    wide = np.zeros((100, 300, 3), dtype=np.uint8)
    wide[:, 100:200] = 255  # white centre square
    out = np.asarray(fit_to_size(Image.fromarray(wide), 50))
    assert out.shape == (50, 50, 3) and out.min() > 220  # only the centre square survives, not squashed
    cropped = np.asarray(fit_to_size(Image.fromarray(wide), (20, 40), crop_fraction=0.5))
    assert cropped.shape == (20, 40, 3)
    with pytest.raises(ValueError):
        fit_to_size(Image.fromarray(wide), 10, crop_fraction=0)


def test_arrays_of_any_channel_count_are_accepted():
    assert load_image(np.full((5, 6), 7, dtype=np.uint8)).shape == (5, 6, 3)
    assert load_image(np.full((5, 6, 4), 255, dtype=np.uint8), 4).shape == (4, 4, 3)
    assert load_image(np.full((5, 6, 3), 254.9, dtype=np.float32))[0, 0, 0] == 255
    with pytest.raises(ValueError, match="expected pixels"):
        load_image(np.zeros((5, 6, 2)))


def test_decode_many_reports_bad_files_and_decodes_the_rest(tmp_path):
    good = _save(tmp_path, "good.png", Image.new("RGB", (30, 30), (1, 2, 3)))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    out, failures, warnings = decode_many([good, bad, good], 16, progress=False)
    assert out.shape == (3, 16, 16, 3)
    assert [index for index, _ in failures] == [1]
    assert "bad.png" in failures[0][1]
    assert tuple(out[2, 0, 0]) == (1, 2, 3)
    assert warnings == []


def test_a_placeholder_graphic_is_flagged_but_a_photo_is_not(tmp_path):
    graphic = _save(tmp_path, "placeholder.gif", Image.new("RGB", (50, 50), (200, 200, 200)).convert("P"))
    photo = _save(tmp_path, "photo.jpg", Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)))
    _, failures, warnings = decode_many([photo, graphic], 16, progress=False)
    assert failures == [] and [index for index, _ in warnings] == [1]
    assert "not a photo" in warnings[0][1]
