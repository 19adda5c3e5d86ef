"""A contact person and phone as typed ("张律师 13800138000"), and as shown (masked)."""
from __future__ import annotations

import re

PHONE = re.compile(r"(?<!\d)(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?!\d)")


def split_contact(text: str) -> tuple[str, str]:
    """"张律师 13800138000" -> ("张律师", "13800138000")."""
    m = PHONE.search(text)
    phone = m.group(1) if m else ""
    name = (text[:m.start()] + " " + text[m.end():]) if m else text
    name = " ".join(re.sub(r"[,，;；:：、/|]+", " ", name).split())[:40]
    return name, phone


def mask_contact(name: str | None, phone: str | None) -> str:
    """The contact as shown: 张律师 138****8000."""
    phone = str(phone or "")
    digits = phone.replace("-", "")
    masked = digits[:3] + "*" * max(0, len(digits) - 7) + digits[-4:] if len(digits) >= 8 else phone
    return " ".join(p for p in (name or "", masked) if p)
