"""The review page through FastAPI's TestClient: log-in, CSRF, sessions, images, drafts,
versions, signatures, the audit trail, blind mode and the signed SR sent to a PACS."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta

import pydicom
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from angioscribe.cli import app as cli_app
from angioscribe.errors import InputError
from angioscribe.evaluate.blind_review import ERROR_COLUMNS, export_review, import_review
from angioscribe.report.records import Draft
from angioscribe.review.app import MAX_BODY_BYTES, Review, create_app
from angioscribe.review.auth import SESSION_COOKIE, check_password
from angioscribe.review.blind import load_blind_set
from angioscribe.review.store import LoginLock, ReviewStore
from angioscribe.review.studies import open_target
from angioscribe.service.sender import SendError
from dicom_network import RecordingDestination
from review_data import PASSWORDS, add_readers, results_folder, service_data
from test_service_queue import postgres_url  # noqa: F401  (the PostgreSQL server fixture)

RECOMMENDATION = "121075"  # DCM code of a Recommendation TEXT item
JA_EDIT = "右冠動脈造影。RCA #2に50%の狭窄を認めます。至適薬物療法を継続してください。"


@pytest.fixture
def review(tmp_path):
    target = open_target(str(results_folder(tmp_path)))
    store = ReviewStore(target.store_url)
    add_readers(store)
    return Review(target, store)


def client(review: Review) -> TestClient:
    return TestClient(create_app(review))


def log_in(review: Review, name: str) -> TestClient:
    browser = client(review)
    page = browser.get("/login")
    response = browser.post("/login", data={"username": name, "password": PASSWORDS[name],
                                            "csrf_token": csrf_of(page.text)},
                            follow_redirects=False)
    assert response.status_code == 303 and SESSION_COOKIE in browser.cookies
    return browser


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def study_page(browser: TestClient) -> tuple[str, str]:
    """The first study's id and page."""
    sid = re.search(r'href="/studies/([^"]+)"', browser.get("/").text).group(1)
    return sid, browser.get(f"/studies/{sid}").text


def snapshot(store: ReviewStore, sid: str) -> tuple:
    return (store.versions(sid), store.scores(sid), [(a.user, a.action, a.item, a.before, a.after)
                                                    for a in store.audit()])


def concept_codes(dataset: pydicom.Dataset) -> list[str]:
    return [element.value[0].CodeValue for element in dataset.iterall()
            if element.keyword == "ConceptNameCodeSequence"]


def edit_form(page: str, ja: str, base: int) -> dict[str, str]:
    en = re.search(r'<textarea name="draft_en"[^>]*>([^<]*)</textarea>', page).group(1)
    return {"csrf_token": csrf_of(page), "base_version": str(base), "draft_en": en,
            "draft_ja": ja}


def test_without_a_session_pages_redirect_and_images_and_api_answer_401(review):
    alice = log_in(review, "alice")
    sid, page = study_page(alice)
    image = re.search(r'src="(/studies/[^"]+\.png)"', page).group(1)
    assert alice.get(image).status_code == 200
    anonymous = client(review)
    for url in ("/", f"/studies/{sid}", "/blind"):
        response = anonymous.get(url, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login"
    for url in (image, "/api/studies", f"/api/studies/{sid}", "/blind/sheet.csv"):
        refused = anonymous.get(url)
        assert refused.status_code == 401 and refused.json() == {"detail": "log in first"}
    assert "Content-Security-Policy" in alice.get("/").headers


def test_wrong_password_or_no_login_token_is_refused_and_only_the_failures_are_audited(review):
    before = len(review.store.audit())
    browser = client(review)
    wrong = browser.post("/login", data={"username": "alice", "password": "not-her-password",
                                         "csrf_token": csrf_of(browser.get("/login").text)})
    unknown = browser.post("/login", data={"username": "mallory", "password": "whatever-1",
                                           "csrf_token": csrf_of(wrong.text)})
    tokenless = browser.post("/login", data={"username": "alice",
                                             "password": PASSWORDS["alice"]})
    assert (wrong.status_code, unknown.status_code, tokenless.status_code) == (401, 401, 403)
    assert SESSION_COOKIE not in browser.cookies
    assert [(a.user, a.action, a.detail) for a in review.store.audit()[before:]] == [
        ("alice", "login.failed", "from testclient"),
        ("mallory", "login.failed", "from testclient")]
    assert "not-her-password" not in repr(review.store.audit())
    assert check_password(review.store, "alice", PASSWORDS["alice"]) is not None


def test_forms_without_the_sessions_csrf_token_are_refused(review):
    alice, bob = log_in(review, "alice"), log_in(review, "bob")
    sid, page = study_page(alice)
    before = snapshot(review.store, sid)
    form = edit_form(page, JA_EDIT, 0)
    score = {"overall": "5", **dict.fromkeys(ERROR_COLUMNS, "0")}
    for path, data in ((f"/studies/{sid}/drafts", form), (f"/studies/{sid}/score", score),
                       (f"/studies/{sid}/sign", {"base_version": "0"})):
        missing = {k: v for k, v in data.items() if k != "csrf_token"}
        assert alice.post(path, data=missing).status_code == 403
        # Bob's session cookie with Alice's token: a token belongs to its session only
        assert bob.post(path, data={**missing, "csrf_token": csrf_of(page)}).status_code == 403
    assert snapshot(review.store, sid) == before


def test_a_session_ends_at_log_out_and_its_cookie_opens_nothing(review):
    alice = log_in(review, "alice")
    sid, page = study_page(alice)
    cookie = alice.cookies[SESSION_COOKIE]
    assert alice.post("/logout", data={"csrf_token": csrf_of(page)},
                      follow_redirects=False).status_code == 303
    replay = client(review)
    replay.cookies.set(SESSION_COOKIE, cookie)
    assert replay.get(f"/api/studies/{sid}").status_code == 401
    assert replay.get(f"/studies/{sid}", follow_redirects=False).status_code == 303
    forged = client(review)
    forged.cookies.set(SESSION_COOKIE, "x" * 43)
    assert forged.get("/api/studies").status_code == 401


@pytest.mark.parametrize("name", [
    "..%2Fanalysis.json", "figures%2F..%2F..%2Fanalysis.json", "%2e%2e/%2e%2e/etc/passwd",
    "%2Fetc%2Fpasswd", "analysis.json", "review.sqlite", "figures/missing.png",
])
def test_images_are_only_the_studys_figures(review, name):
    alice = log_in(review, "alice")
    sid, _ = study_page(alice)
    response = alice.get(f"/studies/{sid}/images/{name}")
    assert response.status_code == 404
    assert b"SQLite" not in response.content and b"root:" not in response.content


def test_a_1_mb_draft_is_refused_and_nothing_changes(review):
    alice = log_in(review, "alice")
    sid, page = study_page(alice)
    before = snapshot(review.store, sid)
    huge = edit_form(page, "狭窄" * 500_000, 0)
    assert alice.post(f"/studies/{sid}/drafts", data=huge).status_code == 413
    just_over = edit_form(page, "a" * (MAX_BODY_BYTES // 2 - 1000), 0)  # under the body limit
    assert alice.post(f"/studies/{sid}/drafts", data=just_over).status_code == 413

    def streamed():  # no Content-Length: the limit counts the bytes as they come
        yield f"csrf_token={csrf_of(page)}&base_version=0&draft_ja=".encode()
        for _ in range(64):
            yield b"a" * 16384

    chunked = alice.post(f"/studies/{sid}/drafts", content=streamed(),
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert chunked.status_code == 413
    assert snapshot(review.store, sid) == before


def test_a_draft_is_shown_as_text_never_as_markup(review):
    alice = log_in(review, "alice")
    sid, page = study_page(alice)
    script = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    saved = alice.post(f"/studies/{sid}/drafts", data=edit_form(page, JA_EDIT + script, 0))
    assert script not in saved.text and "&lt;script&gt;" in saved.text
    assert review.store.latest(sid).texts["ja"] == JA_EDIT + script


def test_edit_shows_changes_then_sign_freezes_and_a_later_edit_is_a_new_version(review):
    alice, bob = log_in(review, "alice"), log_in(review, "bob")
    sid, page = study_page(alice)
    machine_ja = re.search(r'<textarea name="draft_ja"[^>]*>([^<]*)</textarea>', page).group(1)
    saved = alice.post(f"/studies/{sid}/drafts", data=edit_form(page, JA_EDIT, 0))
    assert "version 1" in saved.text
    changes = re.search(r'id="changes">(.*?)</div>', saved.text, re.S).group(1)
    # the machine draft grades #2 above 70 % and plans PCI; the edit says 50 % and medical
    assert re.search(r"<td>#2</td><td>[7-9]\d %</td><td>50 %</td>", changes)
    assert re.search(r"<td>plan</td><td>pci</td><td>medical</td>", changes)
    scored = alice.post(f"/studies/{sid}/score", data={
        "csrf_token": csrf_of(saved.text), "overall": "6", "vessel_errors": "1"})
    assert scored.status_code == 200
    # Bob's page still shows version 0: his sign would sign text he has not seen
    _, bob_page = study_page(bob)
    stale = bob.post(f"/studies/{sid}/sign", data={"csrf_token": csrf_of(bob_page),
                                                   "base_version": "0"},
                     headers={"accept": "text/html"})
    assert stale.status_code == 409 and "reload" in stale.text  # a page for the browser
    signed = alice.post(f"/studies/{sid}/sign", data={"csrf_token": csrf_of(saved.text),
                                                      "base_version": "1"})
    assert 'id="signed"' in signed.text
    assert alice.post(f"/studies/{sid}/sign", data={"csrf_token": csrf_of(saved.text),
                                                    "base_version": "1"}).status_code == 409
    later = alice.post(f"/studies/{sid}/drafts",
                       data=edit_form(signed.text, JA_EDIT.replace("50%", "75%"), 1))
    assert "version 2" in later.text
    first, second = review.store.versions(sid)
    assert first.signed and first.signed_by == "alice" and first.texts["ja"] == JA_EDIT
    assert not second.signed and "75%" in second.texts["ja"]
    assert second.findings["ja"]["findings"][0]["stenosis_percent"] == 75
    trail = [(a.user, a.action) for a in review.store.audit(sid)]
    assert trail == [("alice", "draft.edit"), ("alice", "score"), ("alice", "sign"),
                     ("alice", "draft.edit")]
    edit = review.store.audit(sid)[0]
    assert edit.before["ja"] == machine_ja and edit.after["ja"] == JA_EDIT
    assert review.store.scores(sid)[0].errors["vessel"] == 1
    api = alice.get(f"/api/studies/{sid}").json()
    assert [v["version"] for v in api["versions"]] == [1, 2]


def test_blind_mode_exports_the_sheet_review_import_reads(tmp_path, review):
    models = ("model-a", "model-b")
    drafts = [Draft(f"case{c}", m, f"{m}: LAD #6 {70 + c}% stenosis. PCI.")
              for m in models for c in range(3)]
    written = export_review(drafts, tmp_path / "blind", seed=4)
    review.blind = load_blind_set(tmp_path / "blind")
    alice = log_in(review, "alice")
    listing = alice.get("/blind").text
    assert "model-a" not in listing and "model-b" not in listing
    ids = re.findall(r'href="/blind/(R\d+)"', listing)
    assert len(ids) == len(drafts)
    given = {}
    for number, review_id in enumerate(ids):
        page = alice.get(f"/blind/{review_id}").text
        given[review_id] = (number % 11, number % 3)
        alice.post(f"/blind/{review_id}/score", data={
            "csrf_token": csrf_of(page), "overall": str(number % 11),
            "stenosis_errors": str(number % 3)})
    sheet = tmp_path / "alice.csv"
    sheet.write_bytes(alice.get("/blind/sheet.csv").content)
    imported = import_review(sheet, written["key"])
    key = {row["review_id"]: row for row in csv.DictReader(sheet.open(encoding="utf-8-sig"))}
    assert {d.model for d in imported} == set(models)
    for scores in imported:
        review_id = next(r for r, row in key.items() if row["case_id"] == scores.case_id
                         and row["draft"].startswith(scores.model))
        assert (scores.metrics["overall"], scores.errors["stenosis"]) == given[review_id]
    assert alice.get("/blind/results").status_code == 403
    results = log_in(review, "carol").get("/blind/results").text
    assert "model-a" in results and "data:image/png;base64," in results


def test_signing_sends_a_verified_sr_that_supersedes_the_preliminary(tmp_path):
    data, study = service_data(tmp_path)
    destination = RecordingDestination(folder=tmp_path / "pacs").start()
    try:
        config = tmp_path / "service.yaml"
        config.write_text(f"data_dir: {data}\ndestinations:\n  - {destination.address}\n",
                          encoding="utf-8")
        target = open_target(str(config))
        store = ReviewStore(target.store_url)
        add_readers(store)
        review = Review(target, store, organization="Heart Centre")
        alice = log_in(review, "alice")
        assert "<td>sent</td>" in alice.get("/").text  # the service's state
        sid, page = study_page(alice)
        saved = alice.post(f"/studies/{sid}/drafts", data=edit_form(page, JA_EDIT, 0))
        signed = alice.post(f"/studies/{sid}/sign", data={"csrf_token": csrf_of(saved.text),
                                                          "base_version": "1"})
        assert "sr-signed-v1.dcm to DESTINATION@" in signed.text
    finally:
        destination.stop()
    (received,) = destination.snapshot()
    sr = pydicom.dcmread(tmp_path / "pacs" / f"{received.sop_instance_uid}.dcm")
    preliminary = pydicom.dcmread(data / "results" / sid / "objects" / "sr.dcm")
    assert (sr.CompletionFlag, sr.VerificationFlag) == ("COMPLETE", "VERIFIED")
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "alice^"
    assert sr.VerifyingObserverSequence[0].VerifyingOrganization == "Heart Centre"
    predecessor = sr.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0]
    assert predecessor.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == \
        preliminary.SOPInstanceUID
    assert sr.StudyInstanceUID == preliminary.StudyInstanceUID
    assert sr.SOPInstanceUID != preliminary.SOPInstanceUID
    assert sr.SeriesInstanceUID != preliminary.SeriesInstanceUID
    texts = [element.value for element in sr.iterall() if element.keyword == "TextValue"]
    assert JA_EDIT in texts and preliminary.VerificationFlag == "UNVERIFIED"
    # the plan signed is the one in the signer's text: no guideline Recommendation (121075)
    assert RECOMMENDATION in concept_codes(preliminary)
    assert RECOMMENDATION not in concept_codes(sr)
    assert [a.action for a in store.audit(sid)][-2:] == ["sign", "send"]
    if shutil.which("dciodvfy"):
        checked = subprocess.run(["dciodvfy", str(tmp_path / "pacs" / f"{sr.SOPInstanceUID}.dcm")],
                                 capture_output=True, text=True, check=False)
        lines = (checked.stdout + checked.stderr).splitlines()
        assert not [line for line in lines if line.startswith(("Error", "Warning - Value"))], lines


def test_a_failed_send_keeps_the_signature_is_audited_and_can_be_sent_again(tmp_path):
    data, _ = service_data(tmp_path)
    config = tmp_path / "service.yaml"
    config.write_text(f"data_dir: {data}\ndestinations:\n  - PACS@127.0.0.1:9\n",
                      encoding="utf-8")

    pacs_up = False
    received = []

    def flaky(destination, files, calling_ae, tls):
        if not pacs_up:
            raise SendError(destination, "association rejected")
        received.extend(files)

    target = open_target(str(config))
    store = ReviewStore(target.store_url)
    add_readers(store)
    alice = log_in(Review(target, store, send=flaky), "alice")
    sid, page = study_page(alice)
    assert alice.post(f"/studies/{sid}/send", data={"csrf_token": csrf_of(page)}
                      ).status_code == 409  # nothing signed yet
    signed = alice.post(f"/studies/{sid}/sign", data={"csrf_token": csrf_of(page),
                                                      "base_version": "0"})
    assert "was not sent" in signed.text and 'id="signed"' in signed.text
    assert 'id="resend"' in signed.text and "association rejected" in signed.text
    assert store.latest(sid).signed_by == "alice"
    failure = store.audit(sid)[-1]
    assert failure.action == "send.failed" and "PACS@127.0.0.1:9" in failure.detail
    bob = log_in(Review(target, store, send=flaky), "bob")
    again = bob.post(f"/studies/{sid}/send", data={"csrf_token": csrf_of(signed.text)})
    assert again.status_code == 403 and not received  # alice's form, bob's session
    pacs_up = True
    resent = alice.post(f"/studies/{sid}/send", data={"csrf_token": csrf_of(signed.text)})
    assert "Signed report sr-signed-v1.dcm to PACS@127.0.0.1:9" in resent.text
    assert 'id="resend"' not in resent.text
    assert [path.name for path in received] == ["sr-signed-v1.dcm"]
    assert [(a.user, a.action) for a in store.audit(sid)][-2:] == [("alice", "send.failed"),
                                                                   ("alice", "send")]


def test_user_add_reads_the_password_from_stdin(tmp_path):
    folder = results_folder(tmp_path)
    runner = CliRunner()
    added = runner.invoke(cli_app, ["review", "user", "add", str(folder), "dora", "--role",
                                    "admin"], input="dora-password-9\n")
    assert added.exit_code == 0, added.output
    short = runner.invoke(cli_app, ["review", "user", "add", str(folder), "eve"], input="short\n")
    bad_role = runner.invoke(cli_app, ["review", "user", "add", str(folder), "eve", "--role",
                                       "root"], input="long-enough-9\n")
    assert (short.exit_code, bad_role.exit_code) == (3, 3)
    store = ReviewStore(open_target(str(folder)).store_url)
    assert [(u.name, u.role) for u in store.users()] == [("dora", "admin")]
    assert check_password(store, "dora", "dora-password-9") is not None
    assert check_password(store, "dora", "dora-password-8") is None
    assert (folder / "review.sqlite").is_file()
    listed = runner.invoke(cli_app, ["review", "user", "list", str(folder), "--json"])
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {"name": "dora", "role": "admin"}]


def test_user_remove_ends_their_sessions_and_keeps_what_they_signed(review):
    alice = log_in(review, "alice")
    sid, page = study_page(alice)
    alice.post(f"/studies/{sid}/sign", data={"csrf_token": csrf_of(page), "base_version": "0"})
    folder = str(review.target.source.root)
    removed = CliRunner().invoke(cli_app, ["review", "user", "remove", folder, "alice"])
    assert removed.exit_code == 0, removed.output
    assert alice.get("/", follow_redirects=False).status_code == 303  # back to the log-in
    assert "alice" not in [user.name for user in review.store.users()]
    assert review.store.latest(sid).signed_by == "alice"
    assert review.store.audit()[-1].action == "user.remove"
    again = CliRunner().invoke(cli_app, ["review", "user", "remove", folder, "alice"])
    assert again.exit_code == 3 and "no such user" in again.output


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A new review store's URL on each database the service may use (the PostgreSQL server
    is this session's own; only the store tests make review tables there)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review.sqlite'}"
    return request.getfixturevalue("postgres_url")


def test_the_store_on_sqlite_and_postgresql_of_two_signatures_at_once_keeps_one(store_url):
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = ReviewStore(store_url, clock=lambda: now[0])
    add_readers(store)
    store.add_version("S1", {"ja": "RCA #2に90%狭窄"}, {"ja": {}}, "alice", {"ja": "machine"})
    barrier, outcomes = threading.Barrier(2), []

    def sign(user: str) -> None:
        barrier.wait()
        try:
            store.sign("S1", 1, user)
            outcomes.append(user)
        except InputError:
            outcomes.append("refused")

    threads = [threading.Thread(target=sign, args=(user,)) for user in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (winner,) = [outcome for outcome in outcomes if outcome != "refused"]
    assert outcomes.count("refused") == 1
    (version,) = store.versions("S1")
    assert version.signed_by == winner and version.texts["ja"] == "RCA #2に90%狭窄"
    assert [(a.user, a.action) for a in store.audit("S1")] == [("alice", "draft.edit"),
                                                               (winner, "sign")]
    store.start_session("token", store.user("bob"), "csrf")
    assert store.session("token").user == "bob"
    now[0] += timedelta(hours=9)  # unused longer than a working day: over
    assert store.session("token") is None


def test_the_store_on_sqlite_and_postgresql_locks_after_the_limit_until_unlocked(store_url):
    now = [datetime(2026, 1, 1, 9, 0, tzinfo=UTC)]
    store = ReviewStore(store_url, clock=lambda: now[0])
    keys = {"user:zoe": 3, "address:10.9.9.9": 20}
    window, lock = timedelta(minutes=15), timedelta(minutes=15)
    assert [store.record_login_failure("zoe", keys, window, lock, "test") for _ in range(2)] \
        == [[], []]
    (locked,) = store.record_login_failure("zoe", keys, window, lock, "test")
    assert locked == LoginLock("user:zoe", now[0] + lock)
    assert store.login_lock(["user:nobody", "user:zoe"]) == locked
    now[0] += timedelta(minutes=14)
    assert store.login_lock(["user:zoe"]) == locked
    assert store.unlock("user:zoe", by="cli") == locked
    assert store.login_lock(["user:zoe"]) is None
    assert [a.action for a in store.audit("user:zoe")][-2:] == ["login.locked", "login.unlock"]
