#!/usr/bin/env python3
"""Writes the JPEG and WebP test vectors of this folder with Pillow, and beside each one the pixels
Pillow decodes from it (Image.open + convert("RGB"), "L" for grey, "RGBA" for WebP with alpha) as a
PNG, <name>.pil.png. Run with Debian's python3-pil: /usr/bin/python3 make_vectors.py ."""
import io
import os
import sys

from PIL import Image

W, H = 37, 29  # not multiples of 8 or 16: partial MCUs at the right and bottom edges


def pattern(x, y, c):
    # Smooth gradients (what JPEG keeps well) with a sharp diagonal edge and a few bright dots.
    v = (x * 5 + y * 3 + c * 60 + (x * y) // 7) % 256
    if x + y > 40:
        v = 255 - v
    if (x * 7 + y * 11) % 23 == 0:
        v = 255 if c != 1 else 0
    return v


def rgb_image():
    return Image.frombytes("RGB", (W, H), bytes(pattern(x, y, c) for y in range(H) for x in range(W) for c in range(3)))


def rgba_image():
    alpha = bytes((x * 7 + y * 9) % 256 for y in range(H) for x in range(W))
    image = rgb_image()
    image.putalpha(Image.frombytes("L", (W, H), alpha))
    return image


def exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def main(out):
    rgb = rgb_image()
    vectors = {
        "rgb420.jpg": lambda f: rgb.save(f, "JPEG", quality=90, subsampling=2),
        "rgb422.jpg": lambda f: rgb.save(f, "JPEG", quality=90, subsampling=1),
        "rgb444.jpg": lambda f: rgb.save(f, "JPEG", quality=95, subsampling=0),
        "progressive.jpg": lambda f: rgb.save(f, "JPEG", quality=85, progressive=True),
        "optimized.jpg": lambda f: rgb.save(f, "JPEG", quality=75, optimize=True),
        "grey.jpg": lambda f: rgb.convert("L").save(f, "JPEG", quality=90),
        "cmyk.jpg": lambda f: rgb.convert("CMYK").save(f, "JPEG", quality=90),
        # EXIF orientation 6 (rotate 90 degrees clockwise to view): stored pixels are read as they are.
        "exif6.jpg": lambda f: rgb.save(f, "JPEG", quality=90, exif=exif_orientation(6)),
        "lossless.webp": lambda f: rgb.save(f, "WEBP", lossless=True),
        "lossless_alpha.webp": lambda f: rgba_image().save(f, "WEBP", lossless=True),
        "lossy.webp": lambda f: rgb.save(f, "WEBP", quality=80),
        "lossy_alpha.webp": lambda f: rgba_image().save(f, "WEBP", quality=80),
    }
    for name, write in vectors.items():
        path = os.path.join(out, name)
        buffer = io.BytesIO()
        write(buffer)
        with open(path, "wb") as f:
            f.write(buffer.getvalue())
        with Image.open(path) as image:
            mode = image.mode
            decoded = image.convert("L" if mode == "L" else "RGBA" if mode == "RGBA" else "RGB")
            decoded.save(os.path.join(out, name + ".pil.png"))
        print(f"{name}: {len(buffer.getvalue())} bytes, Pillow mode {mode}")
    # What the tests compare against the source pattern.
    rgb.save(os.path.join(out, "source.png"))
    rgba_image().save(os.path.join(out, "source_alpha.png"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
