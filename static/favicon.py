#!/usr/bin/env python3
"""Renders favicon.svg's shape (a white ring on a rounded blue square) into
favicon.ico: one 32x32 PNG in an ICO container, which every browser reads at
/favicon.ico. Python's standard library only; not served (src/build.rs).
Run it from this directory after changing the shape: python3 favicon.py
"""
import struct
import zlib

SIZE, SS = 32, 8  # pixels, supersamples per axis
BLUE, WHITE = (0x0B, 0x57, 0xD0), (0xFF, 0xFF, 0xFF)


def inside_rounded_square(x, y, r=7.0):
    cx = min(max(x, r), SIZE - r)
    cy = min(max(y, r), SIZE - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def on_ring(x, y):
    d = ((x - 16) ** 2 + (y - 16) ** 2) ** 0.5
    return 7.0 <= d <= 11.0  # radius 9, stroke 4


rows = []
for py in range(SIZE):
    row = bytearray([0])  # PNG filter: none
    for px in range(SIZE):
        acc = [0, 0, 0, 0]
        for sy in range(SS):
            for sx in range(SS):
                x, y = px + (sx + 0.5) / SS, py + (sy + 0.5) / SS
                if not inside_rounded_square(x, y):
                    continue
                colour = WHITE if on_ring(x, y) else BLUE
                for i in range(3):
                    acc[i] += colour[i]
                acc[3] += 1
        n = acc[3]
        rgb = [round(acc[i] / n) if n else 0 for i in range(3)]
        row += bytes(rgb + [round(255 * n / (SS * SS))])
    rows.append(bytes(row))


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


png = (b"\x89PNG\r\n\x1a\n"
       + chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
       + chunk(b"IEND", b""))
ico = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", SIZE, SIZE, 0, 0, 1, 32, len(png), 22)
with open("favicon.ico", "wb") as f:
    f.write(ico + png)
