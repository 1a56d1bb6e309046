"""Log-in throttling of the review page through FastAPI's TestClient: a user name or a client
address locked after too many failed log-ins (429 even with the right password), the lock's
end on the store's clock, a successful log-in resetting the count, and `review user unlock`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from angioscribe.cli import app as cli_app
from angioscribe.review.app import Review, create_app
from angioscribe.review.auth import SESSION_COOKIE
from angioscribe.review.store import ReviewStore, sessions_table
from angioscribe.review.studies import open_target
from angioscribe.review.throttle import LoginLimits
from review_data import PASSWORDS, add_readers, results_folder

WRONG = "not-her-password"


class Clock:
    """The store's clock, moved by the tests (a lock ends without waiting for it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def review(tmp_path, clock):
    target = open_target(str(results_folder(tmp_path)))
    store = ReviewStore(target.store_url, clock=clock)
    add_readers(store)
    return Review(target, store)


def attempt(review: Review, name: str, password: str, address: str = "10.0.0.1"):
    """One log-in from `address` with a fresh form: the response."""
    browser = TestClient(create_app(review), client=(address, 50000))
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text).group(1)
    return browser.post("/login", data={"username": name, "password": password,
                                        "csrf_token": token}, follow_redirects=False)


def statuses(review: Review, name: str, password: str, times: int, **where: str) -> list[int]:
    return [attempt(review, name, password, **where).status_code for _ in range(times)]


def stored(store: ReviewStore) -> tuple:
    """Everything of the store a log-in could change but the throttle's own tables."""
    with store.engine.connect() as conn:
        sessions = conn.execute(sessions_table.select()).all()
    return store.users(), sessions, store.audit()


def test_five_wrong_passwords_lock_the_user_and_then_even_the_right_one_is_refused(review,
                                                                                 clock):
    assert statuses(review, "alice", WRONG, 5) == [401] * 5
    trail = [(a.user, a.action, a.item) for a in review.store.audit()[len(PASSWORDS):]]
    assert trail == [("alice", "login.failed", "user:alice")] * 5 + [
        ("alice", "login.locked", "user:alice")]
    assert WRONG not in repr(review.store.audit())
    before = stored(review.store)
    refused = attempt(review, "alice", PASSWORDS["alice"])
    until = clock.now + timedelta(minutes=15)
    assert refused.status_code == 429 and SESSION_COOKIE not in refused.cookies
    assert (f"too many failed log-ins for this user; try again after {until:%H:%M} UTC"
            in refused.text)
    assert int(refused.headers["Retry-After"]) == 15 * 60 + 1
    assert attempt(review, "alice", WRONG).status_code == 429  # not counted, not stored
    assert stored(review.store) == before
    assert review.store.audit()[-1].after == {"locked_until": until.isoformat()}
    assert attempt(review, "bob", PASSWORDS["bob"]).status_code == 303  # the address is not


def test_the_lock_ends_after_its_time_on_the_stores_clock(review, clock):
    review.login_limits = LoginLimits(per_user=2, lock=timedelta(minutes=1))
    assert statuses(review, "alice", WRONG, 2) == [401, 401]
    clock.now += timedelta(seconds=59)
    assert attempt(review, "alice", PASSWORDS["alice"]).status_code == 429
    clock.now += timedelta(seconds=1)
    assert attempt(review, "alice", PASSWORDS["alice"]).status_code == 303
    # the lock used up its failures: one more wrong password does not lock again
    assert statuses(review, "alice", WRONG, 1) == [401]
    assert attempt(review, "alice", PASSWORDS["alice"]).status_code == 303


def test_only_failures_within_the_window_count(review, clock):
    assert statuses(review, "alice", WRONG, 4) == [401] * 4
    clock.now += timedelta(minutes=15)
    assert statuses(review, "alice", WRONG, 4) == [401] * 4
    assert attempt(review, "alice", PASSWORDS["alice"]).status_code == 303


def test_a_successful_log_in_resets_the_users_count(review):
    assert statuses(review, "alice", WRONG, 4) == [401] * 4
    assert attempt(review, "alice", PASSWORDS["alice"]).status_code == 303
    assert statuses(review, "alice", WRONG, 4) == [401] * 4
    assert attempt(review, "alice", PASSWORDS["alice"]).status_code == 303


def test_one_address_trying_many_names_is_locked_for_all_of_them(review, clock):
    names = [f"guess{number}" for number in range(20)]
    assert [attempt(review, name, WRONG).status_code for name in names] == [401] * 20
    refused = attempt(review, "alice", PASSWORDS["alice"])
    assert refused.status_code == 429 and "from this address" in refused.text
    locked = review.store.audit()[-1]
    assert (locked.user, locked.action, locked.item) == ("guess19", "login.locked",
                                                         "address:10.0.0.1")
    assert attempt(review, "alice", PASSWORDS["alice"], address="10.0.0.2").status_code == 303
    unlocked = CliRunner().invoke(cli_app, ["review", "unlock-address",
                                            str(review.target.source.root), "10.0.0.1"])
    assert unlocked.exit_code == 0 and "10.0.0.1 unlocked" in unlocked.output, unlocked.output
    unlock = review.store.audit()[-1]
    assert (unlock.user, unlock.action, unlock.item) == ("cli", "login.unlock",
                                                         "address:10.0.0.1")
    assert attempt(review, "alice", PASSWORDS["alice"]).status_code == 303


def test_user_unlock_ends_the_lock_at_once(tmp_path, review):
    assert statuses(review, "alice", WRONG, 5) == [401] * 5
    assert attempt(review, "alice", PASSWORDS["alice"]).status_code == 429
    runner = CliRunner()
    unlocked = runner.invoke(cli_app, ["review", "user", "unlock", str(tmp_path / "results"),
                                       "alice"])
    assert unlocked.exit_code == 0, unlocked.output
    assert "alice unlocked" in unlocked.output
    unlock = review.store.audit()[-1]
    assert (unlock.user, unlock.action, unlock.item) == ("cli", "login.unlock", "user:alice")
    assert attempt(review, "alice", PASSWORDS["alice"]).status_code == 303
    again = runner.invoke(cli_app, ["review", "user", "unlock", str(tmp_path / "results"),
                                    "alice"])
    assert again.exit_code == 0 and "was not locked" in again.output
