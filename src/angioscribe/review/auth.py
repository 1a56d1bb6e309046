"""Who may see the review pages: passwords, sessions, CSRF tokens and roles.

The pages show patient data, so nothing but the login form answers without a session. A
password is kept only as its scrypt hash with a per-user random salt (stdlib `hashlib.scrypt`).
A session is a random token in an HttpOnly, SameSite=Strict cookie; the store keeps only the
token's hash. Every form carries the session's CSRF token (the login form a token that must
match its own cookie, as no session exists yet), compared in constant time. Roles: a reader
reviews, edits, scores and signs; an admin may also see the blind-review key's results.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request

from angioscribe.errors import InputError
from angioscribe.review.store import ReviewStore, Session, User

SESSION_COOKIE = "angioscribe_session"
LOGIN_CSRF_COOKIE = "angioscribe_login_csrf"
MIN_PASSWORD_CHARS = 8
# scrypt cost: 16 MiB of memory and ~50 ms per check, which makes guessing expensive offline.
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES = 2**14, 8, 1, 32


def password_hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                          p=SCRYPT_P, dklen=KEY_BYTES)


def add_user(store: ReviewStore, name: str, password: str, role: str, by: str) -> None:
    """Add (or update) a user with a new salt; refuses a short password or an odd name."""
    if not name or len(name) > 64 or not name.replace("_", "").replace("-", "").replace(
            ".", "").isalnum():
        raise InputError(name or "user name", "a user name is 1-64 letters, digits, . _ -")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError(name, f"the password is shorter than {MIN_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(16)
    store.put_user(name, role, salt, password_hash(password, salt), by)


def check_password(store: ReviewStore, name: str, password: str) -> User | None:
    """The user when the password is theirs, else None (an unknown name costs the same)."""
    user = store.user(name)
    salt = user.salt if user else b"no such user...."
    digest = password_hash(password, salt)
    if user is None or not hmac.compare_digest(digest, user.password_hash):
        return None
    return user


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf: str


def log_in(store: ReviewStore, user: User) -> NewSession:
    session = NewSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
    store.start_session(session.token, user, session.csrf)
    return session


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


def session_of(request: Request) -> Session | None:
    """The request's live session, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    store: ReviewStore = request.app.state.review.store
    return store.session(token)


def require_session(request: Request) -> Session:
    """For images and API calls: 401 without a session (pages redirect instead)."""
    session = session_of(request)
    if session is None:
        raise HTTPException(status_code=401, detail="log in first")
    return session


def check_csrf(session: Session, token: str | None) -> None:
    """403 unless the form's token is the session's own."""
    if not same_token(token, session.csrf):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


def require_admin(session: Session) -> None:
    if session.role != "admin":
        raise HTTPException(status_code=403, detail="admins only")
