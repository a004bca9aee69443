#!/usr/bin/env python3
"""Writes the hand-built test vectors of this folder with only zlib and struct: every row filter
forced in turn (row n gets filter n % 5), image data split over many small IDAT chunks, ancillary
chunks around them, Adam7 passes of odd sizes including empty ones. Pixel values follow the same
pattern as make_vectors.c; run: python3 make_vectors.py ."""
import struct
import sys
import zlib

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def sample(x, y, c, depth):
    v = ((x * 0x9E37 + y * 0x85EB + c * 0xC2B2 + x * y * 0x27D4) & 0xFFFFFFFF) >> 3
    return v & ((1 << depth) - 1)


def palette_count(depth):
    return {1: 2, 2: 3, 4: 11, 8: 200}[depth]


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(values, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", v) for v in values)
    if depth == 8:
        return bytes(values)
    out = bytearray((len(values) * depth + 7) // 8)
    for i, v in enumerate(values):
        bit = i * depth
        out[bit // 8] |= v << (8 - depth - bit % 8)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, row, prior, bpp):
    out = bytearray(len(row))
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out[i] = (x - predictor) & 0xFF
    return bytes([kind]) + bytes(out)


def write(path, width, height, colour_type, depth, interlace, idat_size, extra_before=(), extra_after=()):
    channels = CHANNELS[colour_type]
    bpp = max(1, channels * depth // 8)

    def values(x, y):
        if colour_type == 3:
            return [sample(x, y, 0, depth) % palette_count(depth)]
        return [sample(x, y, c, depth) for c in range(channels)]

    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    row_number = 0
    for x0, y0, dx, dy in passes:
        xs = list(range(x0, width, dx))
        ys = list(range(y0, height, dy))
        if not xs or not ys:
            continue  # an empty pass stores nothing
        prior = bytes(len(pack_row([0] * (len(xs) * channels), depth)))
        for y in ys:
            row = pack_row([v for x in xs for v in values(x, y)], depth)
            raw += filter_row(row_number % 5, row, prior, bpp)
            prior = row
            row_number += 1

    out = bytearray(b"\x89PNG\r\n\x1a\n")
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, interlace))
    for kind, data in extra_before:
        out += chunk(kind, data)
    if colour_type == 3:
        n = palette_count(depth)
        out += chunk(b"PLTE", bytes(v for i in range(n) for v in ((i * 37 + 11) & 255, (i * 91 + 3) & 255, (i * 53 + 200) & 255)))
    compressed = zlib.compress(bytes(raw), 9)
    for start in range(0, len(compressed), idat_size):
        out += chunk(b"IDAT", compressed[start:start + idat_size])
    for kind, data in extra_after:
        out += chunk(kind, data)
    out += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "."
    ancillary = [(b"gAMA", struct.pack(">I", 45455)), (b"tEXt", b"Comment\x00test vector"), (b"prVt", b"\x01\x02\x03")]
    write(f"{folder}/f_rgb8.png", 10, 9, 2, 8, 0, 23, extra_before=ancillary, extra_after=[(b"tIME", struct.pack(">HBBBBB", 2024, 1, 2, 3, 4, 5))])
    write(f"{folder}/f_g16i.png", 10, 9, 0, 16, 1, 31)
    write(f"{folder}/f_rgba8i.png", 10, 9, 6, 8, 1, 40, extra_before=ancillary)
    write(f"{folder}/f_p2i.png", 10, 9, 3, 2, 1, 17)
    write(f"{folder}/f_g4i_3x2.png", 3, 2, 0, 4, 1, 100)
    write(f"{folder}/f_rgb8i_1x1.png", 1, 1, 2, 8, 1, 100)


if __name__ == "__main__":
    main()
