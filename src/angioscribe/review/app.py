"""The review web app: server-rendered pages over the studies and the review store.

`create_app` builds a FastAPI app; `angioscribe review serve` runs it with uvicorn. Pages are
Jinja2 templates (`templates/`), one stylesheet and one small script for zooming images
(`static/`); nothing is built or fetched from a network. Pages redirect to /login without a
session; images and /api answer 401. Too many failed log-ins lock the user name or the client
address for a while (429, `throttle.py`). Every form carries the session's CSRF token; a request
body over `MAX_BODY_BYTES` is refused (413) before it is read, a draft over `MAX_DRAFT_CHARS`
too. Responses are not cached and may not be framed (patient data).
"""

from __future__ import annotations

import base64
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from angioscribe.errors import AngioscribeError, InputError
from angioscribe.evaluate.blind_review import ERROR_COLUMNS, MAX_SCORE
from angioscribe.evaluate.report_errors import ERROR_CATEGORIES
from angioscribe.review import auth, throttle
from angioscribe.review.blind import BlindSet, filled_sheet, reader_results
from angioscribe.review.changes import DraftChanges, draft_changes, parsed
from angioscribe.review.store import AuditEntry, LoginLock, ReviewStore, Session, Version
from angioscribe.review.studies import StudyEntry, Target, figures, find_study, image_path

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_BODY_BYTES = 256 * 1024  # the largest form accepted; a draft is a few kB
MAX_DRAFT_CHARS = 20_000  # per language
SENT, SEND_FAILED = "send", "send.failed"  # audit actions of a signed report's send
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Review:
    """What the app works on (kept as `app.state.review`)."""

    target: Target
    store: ReviewStore
    blind: BlindSet | None = None
    organization: str = "angioscribe review"
    send: Callable[..., None] | None = None  # the sender for signed SRs; tests pass their own
    login_limits: throttle.LoginLimits = throttle.LoginLimits()


class LoginRequired(Exception):
    """A page asked for without a session: answered by a redirect to /login."""


def create_app(review: Review) -> FastAPI:
    app = FastAPI(title="angioscribe review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.review = review
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.middleware("http")(_security_headers)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(StarletteHTTPException, _refusal)
    for register in (_login_routes, _study_routes, _blind_routes, _api_routes):
        register(app)
    return app


templates = Jinja2Templates(directory=HERE / "templates")
# The audit trail's before/after as JSON that keeps Japanese readable (autoescaped as text).
templates.env.filters["readable_json"] = lambda value: json.dumps(value, ensure_ascii=False)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context["blind_mode"] = review_of(request).blind is not None
    return templates.TemplateResponse(request, name, context, status_code=status)


def review_of(request: Request) -> Review:
    return request.app.state.review


def page_session(request: Request) -> Session:
    session = auth.session_of(request)
    if session is None:
        raise LoginRequired
    return session


async def posted(request: Request, session: Session) -> FormData:
    """The form of a POST, after its CSRF token was checked against the session."""
    form = await request.form()
    auth.check_csrf(session, _text(form.get("csrf_token")))
    return form


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- login -------------------------------------------------------------------------------------


def _login_routes(app: FastAPI) -> None:
    @app.get("/login")
    def login_form(request: Request) -> HTMLResponse:
        return _login_page(request, 200, "")

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        if not auth.same_token(_text(form.get("csrf_token")),
                               request.cookies.get(auth.LOGIN_CSRF_COOKIE)):
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
        name = _text(form.get("username"))
        address = request.client.host if request.client else "?"
        review = review_of(request)
        lock = throttle.live_lock(review.store, name, address)
        if lock is not None:
            log.warning("refused log-in for %r from %s: %s locked", name[:64], address, lock.key)
            return _locked_page(request, lock)
        user = auth.check_password(review.store, name, _text(form.get("password")))
        if user is None:
            log.warning("failed log-in for %r from %s", name[:64], address)
            throttle.record_failure(review.store, review.login_limits, name, address)
            return _login_page(request, 401, "Wrong user name or password.")
        throttle.record_success(review.store, name)
        session = auth.log_in(review.store, user)
        response = see_other("/")
        response.set_cookie(auth.SESSION_COOKIE, session.token, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        response.delete_cookie(auth.LOGIN_CSRF_COOKIE)
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        session = page_session(request)
        await posted(request, session)
        review_of(request).store.end_session(request.cookies[auth.SESSION_COOKIE])
        response = see_other("/login")
        response.delete_cookie(auth.SESSION_COOKIE)
        return response


def _login_page(request: Request, status: int, message: str) -> HTMLResponse:
    token = auth.new_token()
    response = render(request, "login.html", status, csrf=token, message=message)
    response.set_cookie(auth.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


def _locked_page(request: Request, lock: LoginLock) -> HTMLResponse:
    """429 with the log-in form, saying until when; Retry-After for anything but a person."""
    response = _login_page(request, 429, throttle.refusal_message(lock))
    seconds = (lock.until - review_of(request).store.clock()).total_seconds()
    response.headers["Retry-After"] = str(max(1, int(seconds) + 1))
    return response


async def _to_login(_request: Request, _error: Exception) -> Response:
    return see_other("/login")


async def _refusal(request: Request, error: StarletteHTTPException) -> Response:
    """A refusal as a page for a browser (with a way back), as JSON for anything else."""
    if "text/html" not in request.headers.get("accept", ""):
        return await http_exception_handler(request, error)
    response = render(request, "refused.html", error.status_code,
                      session=auth.session_of(request), detail=error.detail,
                      code=error.status_code)
    response.headers.update(error.headers or {})
    return response


# --- studies -----------------------------------------------------------------------------------


def _study_routes(app: FastAPI) -> None:
    @app.get("/")
    def study_list(request: Request) -> HTMLResponse:
        session = page_session(request)
        review = review_of(request)
        rows = [(entry, review_state(review.store, entry.id))
                for entry in review.target.source.studies()]
        return render(request, "studies.html", session=session, rows=rows)

    @app.get("/studies/{sid}")
    def study_page(request: Request, sid: str) -> HTMLResponse:
        session = page_session(request)
        entry, study = _study(request, sid)
        return render(request, "study.html", **study_context(review_of(request), session,
                                                             entry, study),
                      message=request.query_params.get("message", ""))

    @app.get("/studies/{sid}/images/{name:path}")
    def study_image(request: Request, sid: str, name: str) -> FileResponse:
        auth.require_session(request)
        entry, study = _study(request, sid)
        path = image_path(entry, study, name)
        if path is None:
            raise HTTPException(status_code=404, detail="no such image of this study")
        return FileResponse(path)

    @app.post("/studies/{sid}/drafts")
    async def save_drafts(request: Request, sid: str) -> Response:
        session = page_session(request)
        form = await posted(request, session)
        entry, study = _study(request, sid)
        review = review_of(request)
        current = current_texts(review.store, entry.id, study)
        texts = {lang: _draft_field(form, lang) for lang in current}
        _check_base(review.store, entry.id, form)
        if texts == current:
            return see_other(f"/studies/{sid}?message=No+change+to+save.")
        try:
            version = save_version(review.store, entry.id, texts, session.user, current)
        except InputError as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        return see_other(f"/studies/{sid}?message=Saved+as+version+{version.version}.")

    @app.post("/studies/{sid}/score")
    async def score_study(request: Request, sid: str) -> Response:
        session = page_session(request)
        form = await posted(request, session)
        entry, _ = _study(request, sid)
        overall, errors = score_fields(form)
        review_of(request).store.add_score(entry.id, session.user, overall, errors)
        return see_other(f"/studies/{sid}?message=Score+saved.")

    @app.post("/studies/{sid}/sign")
    async def sign_study(request: Request, sid: str) -> Response:
        session = page_session(request)
        form = await posted(request, session)
        entry, study = _study(request, sid)
        review = review_of(request)
        _check_base(review.store, entry.id, form)
        latest = review.store.latest(entry.id)
        if latest is None:
            texts = machine_texts(study)
            latest = save_version(review.store, entry.id, texts, session.user, texts)
        try:
            signed = review.store.sign(entry.id, latest.version, session.user)
        except InputError as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        message = f"Version {signed.version} signed." + send_signed_report(
            review, entry, study, signed, session.user)
        return see_other(f"/studies/{sid}?message={quote_plus(message)}")

    @app.post("/studies/{sid}/send")
    async def resend_signed(request: Request, sid: str) -> Response:
        """Send the signed version again after a failed send (the PACS was down): the same
        SOP Instance UID, so a copy that did arrive is replaced, not doubled."""
        session = page_session(request)
        await posted(request, session)
        entry, study = _study(request, sid)
        review = review_of(request)
        latest = review.store.latest(entry.id)
        if latest is None or not latest.signed:
            raise HTTPException(status_code=409, detail="no signed version to send")
        if review.target.service is None:
            raise HTTPException(status_code=409, detail="these studies have no service "
                                                        "destinations to send to")
        message = send_signed_report(review, entry, study, latest, session.user).strip()
        return see_other(f"/studies/{sid}?message={quote_plus(message)}")


def _study(request: Request, sid: str) -> tuple[StudyEntry, dict[str, Any]]:
    review = review_of(request)
    entry = find_study(review.target.source, sid)
    if entry is None:
        raise HTTPException(status_code=404, detail="no such study")
    try:
        return entry, review.target.source.analysis(entry)
    except InputError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None


def save_version(store: ReviewStore, sid: str, texts: Mapping[str, str], user: str,
                 before: Mapping[str, str]) -> Version:
    """The texts as the study's next version, each with the parser's reading of it."""
    return store.add_version(sid, texts, {lang: parsed(text, lang) for lang, text in texts.items()},
                             user, before)


def machine_texts(study: Mapping[str, Any]) -> dict[str, str]:
    """The drafts angioscribe wrote, by language."""
    return {lang: str(draft.get("text", "")) for lang, draft in (study.get("drafts") or {}).items()}


def current_texts(store: ReviewStore, sid: str, study: Mapping[str, Any]) -> dict[str, str]:
    """The latest saved version's texts, else the machine drafts."""
    latest = store.latest(sid)
    return dict(latest.texts) if latest else machine_texts(study)


def last_send_failure(audit: list[AuditEntry]) -> str | None:
    """Why the last send of a study's signed report failed, from its audit trail; None when
    it has not failed (never sent, or sent since)."""
    sends = [entry for entry in audit if entry.action in (SENT, SEND_FAILED)]
    return sends[-1].detail if sends and sends[-1].action == SEND_FAILED else None


def review_state(store: ReviewStore, sid: str) -> str:
    latest = store.latest(sid)
    if latest is not None and latest.signed:
        return f"signed (v{latest.version}, {latest.signed_by})"
    if latest is not None:
        return f"edited (v{latest.version}), not signed"
    return "scored" if store.scores(sid) else "to review"


def study_context(review: Review, session: Session, entry: StudyEntry,
                  study: Mapping[str, Any]) -> dict[str, Any]:
    versions = review.store.versions(entry.id)
    audit = review.store.audit(entry.id)
    return {
        "session": session,
        "entry": entry,
        "study": study,
        "figures": figures(study),
        "findings": study.get("study_findings") or [],
        "texts": current_texts(review.store, entry.id, study),
        "machine": machine_texts(study),
        "versions": versions,
        "latest": versions[-1] if versions else None,
        "changes": last_changes(versions, study),
        "my_score": review.store.score(entry.id, session.user),
        "scores": review.store.scores(entry.id),
        "audit": audit,
        "send_failure": last_send_failure(audit),
        "categories": list(zip(ERROR_CATEGORIES, ERROR_COLUMNS, strict=True)),
        "max_score": MAX_SCORE,
        "max_draft": MAX_DRAFT_CHARS,
    }


def last_changes(versions: list[Version], study: Mapping[str, Any]) -> list[DraftChanges]:
    """What the latest version changed against the one before it (or the machine drafts)."""
    if not versions:
        return []
    latest = versions[-1]
    before = (versions[-2].findings if len(versions) > 1 else
              {lang: parsed(text, lang) for lang, text in machine_texts(study).items()})
    return [draft_changes(before[lang], latest.findings[lang], lang)
            for lang in latest.findings if lang in before]


def send_signed_report(review: Review, entry: StudyEntry, study: Mapping[str, Any],
                       signed: Version, user: str) -> str:
    """With the service's studies, the signed SR written and sent to its destinations; what
    happened, for the page (a failed send leaves the signature and is audited under `user`,
    so the page offers to send again)."""
    service = review.target.service
    if service is None:
        return ""
    from angioscribe.review.signing import send_signed, write_signed_sr

    try:
        path = write_signed_sr(study, entry.analysis_dir, signed.texts, signed.signed_by or "",
                               review.organization, signed.version)
        sent = send_signed(path, service, review.send)
    except AngioscribeError as error:
        review.store.note(user, SEND_FAILED, entry.id, str(error))
        return f" The signed report was not sent: {error}"
    detail = f"{path.name} to {', '.join(sent) or 'no destination (none configured)'}"
    review.store.note(user, SENT, entry.id, detail)
    return f" Signed report {detail}."


def _check_base(store: ReviewStore, sid: str, form: FormData) -> None:
    """409 when the page the form came from showed another version than the latest (someone
    saved or signed in between): the reader must see what they sign."""
    latest = store.latest(sid)
    shown = _text(form.get("base_version")) or "0"
    if str(latest.version if latest else 0) != shown:
        raise HTTPException(status_code=409, detail="the drafts changed since this page was "
                                                    "loaded; reload it")


def _draft_field(form: FormData, lang: str) -> str:
    text = _text(form.get(f"draft_{lang}")).replace("\r\n", "\n")
    if len(text) > MAX_DRAFT_CHARS:
        raise HTTPException(status_code=413, detail=f"the {lang} draft is longer than "
                                                    f"{MAX_DRAFT_CHARS} characters")
    return text


def score_fields(form: FormData) -> tuple[float, dict[str, int]]:
    """The overall score 0-10 and the five error counts of a score form; 422 when not."""
    try:
        overall = int(_text(form.get("overall")))
        errors = {category: int(_text(form.get(column)) or "0")
                  for category, column in zip(ERROR_CATEGORIES, ERROR_COLUMNS, strict=True)}
    except ValueError:
        raise HTTPException(status_code=422, detail="scores are whole numbers") from None
    if not 0 <= overall <= MAX_SCORE or min(errors.values()) < 0:
        raise HTTPException(status_code=422, detail=f"overall is 0-{MAX_SCORE}, counts >= 0")
    return overall, errors


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- blind mode --------------------------------------------------------------------------------


def _blind_routes(app: FastAPI) -> None:
    @app.get("/blind")
    def blind_list(request: Request) -> HTMLResponse:
        session = page_session(request)
        blind = _blind(request)
        mine = my_blind_scores(review_of(request).store, blind, session.user)
        return render(request, "blind_list.html", session=session, blind=blind, mine=mine)

    @app.get("/blind/sheet.csv")
    def blind_sheet(request: Request) -> Response:
        session = auth.require_session(request)
        blind = _blind(request)
        sheet = filled_sheet(blind, my_blind_scores(review_of(request).store, blind,
                                                    session.user))
        return Response(sheet.encode("utf-8-sig"), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="review_sheet_{session.user}.csv"'})

    @app.get("/blind/results")
    def blind_results(request: Request) -> HTMLResponse:
        session = page_session(request)
        auth.require_admin(session)
        blind = _blind(request)
        store = review_of(request).store
        results = [reader_table(blind, store, user.name) for user in store.users()]
        return render(request, "blind_results.html", session=session, blind=blind,
                      results=[r for r in results if r["scored"]])

    @app.get("/blind/{review_id}")
    def blind_draft(request: Request, review_id: str) -> HTMLResponse:
        session = page_session(request)
        blind = _blind(request)
        draft = blind.draft(review_id)
        if draft is None:
            raise HTTPException(status_code=404, detail="no such draft in the blind set")
        ids = [d.review_id for d in blind.drafts]
        following = ids[ids.index(review_id) + 1] if review_id != ids[-1] else None
        return render(request, "blind_draft.html", session=session, draft=draft,
                      next_id=following,
                      my_score=review_of(request).store.score(draft.item, session.user),
                      categories=list(zip(ERROR_CATEGORIES, ERROR_COLUMNS, strict=True)),
                      max_score=MAX_SCORE, message=request.query_params.get("message", ""))

    @app.post("/blind/{review_id}/score")
    async def blind_score(request: Request, review_id: str) -> Response:
        session = page_session(request)
        form = await posted(request, session)
        draft = _blind(request).draft(review_id)
        if draft is None:
            raise HTTPException(status_code=404, detail="no such draft in the blind set")
        overall, errors = score_fields(form)
        review_of(request).store.add_score(draft.item, session.user, overall, errors)
        return see_other(f"/blind/{review_id}?message=Score+saved.")


def _blind(request: Request) -> BlindSet:
    blind = review_of(request).blind
    if blind is None:
        raise HTTPException(status_code=404, detail="no blind set (serve with --blind)")
    return blind


def my_blind_scores(store: ReviewStore, blind: BlindSet, user: str) -> dict[str, Any]:
    scores = {d.review_id: store.score(d.item, user) for d in blind.drafts}
    return {rid: score for rid, score in scores.items() if score is not None}


def reader_table(blind: BlindSet, store: ReviewStore, user: str) -> dict[str, Any]:
    """One reader's Table 4 and score figure (inlined), or why there is none yet."""
    from angioscribe.cli.reports import error_display, error_display_columns

    scores = my_blind_scores(store, blind, user)
    result: dict[str, Any] = {"user": user, "scored": len(scores), "rows": [], "figure": "",
                              "columns": (), "problem": ""}
    if not scores:
        return result
    with tempfile.TemporaryDirectory(prefix="angioscribe-review-") as folder:
        try:
            table = reader_results(blind, filled_sheet(blind, scores), Path(folder), n_boot=200)
        except InputError as error:
            result["problem"] = str(error)
            return result
        figure = base64.b64encode((Path(folder) / "review_scores.png").read_bytes()).decode()
    result.update(rows=[error_display(row) for row in table],
                  columns=error_display_columns(table), figure=f"data:image/png;base64,{figure}")
    return result


# --- API ---------------------------------------------------------------------------------------


def _api_routes(app: FastAPI) -> None:
    @app.get("/api/studies")
    def api_studies(request: Request) -> list[dict[str, Any]]:
        auth.require_session(request)
        review = review_of(request)
        return [{"id": e.id, "key": e.key, "service_state": e.service_state,
                 "review_state": review_state(review.store, e.id)}
                for e in review.target.source.studies()]

    @app.get("/api/studies/{sid}")
    def api_study(request: Request, sid: str) -> dict[str, Any]:
        auth.require_session(request)
        entry, _ = _study(request, sid)
        store = review_of(request).store
        return {"id": entry.id, "key": entry.key,
                "versions": [_plain(v.__dict__) for v in store.versions(entry.id)],
                "scores": [_plain(s.__dict__) for s in store.scores(entry.id)],
                "audit": [_plain(a.__dict__) for a in store.audit(entry.id)]}


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in values.items()}


# --- middleware --------------------------------------------------------------------------------


async def _security_headers(request: Request,
                            call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class BodyLimit:
    """Refuses (413) a request whose body is larger than `limit` bytes, by its Content-Length
    or, when it has none, as soon as the streamed body passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _too_large(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(status_code=413, detail="request body too large")
            return message

        await self.app(scope, limited, send)


async def _too_large(send: Send) -> None:
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"request body too large"})
