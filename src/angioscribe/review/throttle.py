"""Log-in throttling: too many failed log-ins lock the user name, or the address, for a while.

A password can otherwise be guessed online as fast as the server answers. After
`LoginLimits.per_user` failed log-ins for one user name within `window`, that name is locked
for `lock`: its log-ins are refused (429) without checking the password, so a guess that
happens to be right gives nothing away. One client address has a larger limit of its own, so
a caller cannot spread guesses over many names. Failures and locks are kept in the review
store (every app process sharing it sees them, and they outlive a restart) and each is
audited under the name tried, never the password. Refused attempts are only logged, so a
locked caller cannot grow the store. A successful log-in forgets the name's failures; an admin
ends a lock with `angioscribe review user unlock` (a name) or `review unlock-address`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from angioscribe.review.store import LoginLock, ReviewStore

USER_PREFIX, ADDRESS_PREFIX = "user:", "address:"


@dataclass(frozen=True)
class LoginLimits:
    """How many failed log-ins within `window` lock a user name or an address, and for how
    long. The defaults leave room for a few typing errors, and hold a guesser to about 20
    tries an hour per name."""

    per_user: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)


def user_key(name: str) -> str:
    """The throttle key of a user name tried (cut to a user name's 64 characters)."""
    return USER_PREFIX + name[:64]


def address_key(address: str) -> str:
    return ADDRESS_PREFIX + address


def live_lock(store: ReviewStore, name: str, address: str) -> LoginLock | None:
    """The lock refusing a log-in as `name` from `address`, checked before the password."""
    return store.login_lock([user_key(name), address_key(address)])


def refusal_message(lock: LoginLock) -> str:
    """What the log-in page says: which limit was reached and until when (UTC)."""
    whose = "for this user" if lock.key.startswith(USER_PREFIX) else "from this address"
    return f"too many failed log-ins {whose}; try again after {lock.until:%H:%M} UTC"


def record_failure(store: ReviewStore, limits: LoginLimits, name: str,
                   address: str) -> list[LoginLock]:
    """Count a wrong password (or unknown name) against the name and the address; the locks
    it set."""
    return store.record_login_failure(
        name[:64], {user_key(name): limits.per_user, address_key(address): limits.per_address},
        limits.window, limits.lock, detail=f"from {address}")


def record_success(store: ReviewStore, name: str) -> None:
    """A right password: the name's failures so far no longer count (the address's still do,
    so one known password does not reset a caller spraying other names)."""
    store.clear_login_failures(user_key(name))


def unlock_user(store: ReviewStore, name: str, by: str) -> LoginLock | None:
    """End the lock on user `name` now (audited as done `by`); the lock ended, or None."""
    return store.unlock(user_key(name), by)


def unlock_address(store: ReviewStore, address: str, by: str) -> LoginLock | None:
    """End the lock on client `address` now (a ward's shared proxy locked by someone's
    guesses locks out every reader behind it); the lock ended, or None."""
    return store.unlock(address_key(address), by)
