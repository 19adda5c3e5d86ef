"""Who a web chat visitor is, without accounts: a signed anonymous id, CSRF tokens, recovery codes, rate limits.

The cookie holds ``<id>.<HMAC-SHA256(secret, id)>``: a cookie made by another
server (another secret) or edited by hand does not verify and the visitor
gets a new, empty identity.  A recovery code is 60 random bits shown once;
only its keyed hash is stored.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

COOKIE = "huqi_web"
SECRET_FILE = "webchat_secret"
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"     # Crockford base32: no I L O U
CODE_LENGTH = 12


def load_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else one generated once and kept (0600) in the data directory."""
    if configured:
        return configured.encode("utf-8")
    path = Path(data_dir) / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:                      # another worker made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
        fh.flush()
        os.fsync(fh.fileno())
    return value


def _mac(secret: bytes, purpose: str, value: str) -> str:
    digest = hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_user_id() -> str:
    return secrets.token_urlsafe(18)


def sign(secret: bytes, user_id: str) -> str:
    return f"{user_id}.{_mac(secret, 'id', user_id)}"


def verify(secret: bytes, cookie: str | None) -> str | None:
    """The user id a cookie carries, or None when it is missing, malformed or not signed by us."""
    if not cookie or len(cookie) > 200 or "." not in cookie:
        return None
    user_id, _, mac = cookie.rpartition(".")
    if not user_id or not all(c.isalnum() or c in "-_" for c in user_id):
        return None
    return user_id if hmac.compare_digest(mac, _mac(secret, "id", user_id)) else None


def csrf_token(secret: bytes, user_id: str) -> str:
    return _mac(secret, "csrf", user_id)


def csrf_ok(secret: bytes, user_id: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(given, csrf_token(secret, user_id))


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_code(text: str) -> str | None:
    """A typed code in canonical form (case, dashes, spaces and look-alikes forgiven), or None."""
    s = "".join(str(text or "").split()).replace("-", "").upper()
    s = s.translate(str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"}))
    if len(s) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in s):
        return None
    return s


def code_key(secret: bytes, code: str) -> str:
    """The state key a canonical code is stored under (keyed hash: the code itself is never stored)."""
    return "webcode:" + hmac.new(secret, f"code:{code}".encode(), hashlib.sha256).hexdigest()


class RateLimiter:
    """At most ``rate`` events per ``per`` seconds for each key (a token bucket, in this process)."""

    def __init__(self, rate: float, per: float = 60.0, clock=time.monotonic, max_keys: int = 100_000):
        self.rate, self.per, self.clock, self.max_keys = float(rate), float(per), clock, max_keys
        self.buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, cost: float = 1.0) -> bool:
        now = self.clock()
        tokens, last = self.buckets.get(key, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate / self.per)
        if tokens < cost:
            self.buckets[key] = (tokens, now)
            return False
        self.buckets[key] = (tokens - cost, now)
        if len(self.buckets) > self.max_keys:          # forget the fullest (idle) buckets
            for k in [k for k, (t, _) in self.buckets.items() if t >= self.rate - cost][: self.max_keys // 10]:
                del self.buckets[k]
        return True
