"""A QR code for a link, as an SVG document (segno: pure Python, nothing fetched)."""
from __future__ import annotations

import io

import segno


def qr_svg(url: str, scale: int = 6) -> str:
    """The QR code of ``url`` as a standalone SVG (dark modules on white, a quiet zone of 4)."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="svg", scale=scale, border=4, xmldecl=False, svgns=True)
    return out.getvalue().decode("utf-8")
