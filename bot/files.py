"""Evidence files on disk: checked against the limits, stored once under their sha256 (mode 0600).

``<files dir>/<first two hex digits>/<sha256>``: the name is the content, so a
file sent twice is kept once, any worker sharing the directory finds it, and
an attachment record needs only its ``sha256`` to locate it.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

#: MIME types taken as evidence: screenshots, photos, recordings, documents.
ALLOWED_PREFIXES = ("image/", "video/", "audio/", "text/plain", "application/pdf", "application/msword",
                    "application/vnd.openxmlformats-officedocument.", "application/vnd.ms-",
                    "application/zip", "application/x-zip-compressed", "application/octet-stream")
ALLOWED_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".heic", ".bmp", ".pdf", ".doc", ".docx", ".xls",
                    ".xlsx", ".ppt", ".pptx", ".txt", ".mp4", ".mov", ".mp3", ".m4a", ".ogg", ".wav", ".amr",
                    ".zip")


def refusal(name: str, size: int | None, mime: str | None, max_bytes: int) -> tuple[str, dict] | None:
    """``(text key, values)`` when the file may not be kept, None when it may."""
    if size and size > max_bytes:
        return "file_too_large", {"name": name, "size_mb": f"{size / 2**20:.1f}", "limit_mb": f"{max_bytes / 2**20:g}"}
    mime = (mime or "").lower()
    if mime and mime.startswith(ALLOWED_PREFIXES) and mime != "application/octet-stream":
        return None
    if name.lower().endswith(ALLOWED_SUFFIXES):
        return None
    return "file_type_refused", {"name": name, "mime": mime or "?"}


def path_for(files_dir: Path | str, sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a sha256 hex digest")
    return Path(files_dir) / sha256[:2] / sha256


def save(files_dir: Path | str, data: bytes) -> str:
    """Store ``data`` durably (fsync'd, 0600); returns its sha256.  Blocking: run it in a thread."""
    sha = hashlib.sha256(data).hexdigest()
    target = path_for(files_dir, sha)
    if target.exists() and target.stat().st_size == len(data):
        return sha
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".in-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return sha
