"""A PNG screenshot made into a Y4M video file for chromium's fake camera (``--use-file-for-fake-video-capture``).

Test support, stdlib only: decodes the 8-bit RGB/RGBA, non-interlaced PNGs that chromium's screenshots are, and
writes one 4:2:0 frame, the image centred and scaled up by whole pixels on a white field.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path


def png_gray(data: bytes) -> tuple[int, int, list[bytearray]]:
    """(width, height, rows of luma bytes) of an 8-bit RGB or RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, ihdr = 8, b"", b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", ihdr)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    rows: list[bytearray] = []
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytearray((line[x] * 299 + line[x + 1] * 587 + line[x + 2] * 114) // 1000
                              for x in range(0, stride, bpp)))
        prev = line
    return width, height, rows


def write_y4m(png: bytes, path: Path, width: int = 640, height: int = 480, frames: int = 2) -> None:
    w, h, rows = png_gray(png)
    scale = max(1, min((width - 40) // w, (height - 40) // h))
    luma = bytearray(b"\xff" * (width * height))
    x0, y0 = (width - w * scale) // 2, (height - h * scale) // 2
    for y in range(h * scale):
        src = rows[y // scale]
        line = bytes(src[x // scale] for x in range(w * scale))
        start = (y0 + y) * width + x0
        luma[start:start + len(line)] = line
    chroma = b"\x80" * ((width // 2) * (height // 2))
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + bytes(luma) + chroma + chroma)
