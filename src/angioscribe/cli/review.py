"""`angioscribe review`: the clinician's review, on paper and in a browser.

`export` and `import` are the model-blinded review on paper (CSV); `serve` is the review page
in a browser (docs/review.md). `user add|list|remove` manage its log-ins; `user unlock` and
`unlock-address` end a user's or a client address's lock after too many failed log-ins. Each
makes one thing from its inputs, so a bad input stops it with an error naming it and exit
code 3 (`angioscribe.cli.refusal`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from angioscribe.cli.output import JsonOption, print_records
from angioscribe.cli.refusal import refuse
from angioscribe.cli.reports import (
    SeedOption,
    error_display,
    error_display_columns,
    json_document,
)
from angioscribe.errors import InputError

if TYPE_CHECKING:
    from angioscribe.review.store import ReviewStore

app = typer.Typer(
    no_args_is_help=True,
    help="Clinician review: the review page (serve, user add|list|remove|unlock, "
    "unlock-address); blind review export/import.",
)
user_app = typer.Typer(no_args_is_help=True, help="Users of the review page.")
app.add_typer(user_app, name="user")

TargetArgument = Annotated[
    str,
    typer.Argument(
        metavar="RESULTS_DIR_OR_QUEUE_URL",
        help="A results folder (analysis.json), the service's data folder, its queue URL or "
        "its config file (YAML; signed reports then go to its destinations).",
    ),
]


@app.command("export")
def export(
    pred: Annotated[list[Path], typer.Option("--pred", help="Draft reports JSONL; repeatable.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the sheet, page and key.")],
    seed: SeedOption = 0,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Truth JSONL: images and references to show.")
    ] = None,
    images: Annotated[
        Path | None, typer.Option("--images", help="Folder of the truth images.")
    ] = None,
) -> None:
    """Write review_sheet.csv, review.html (send these) and review_key.json (keep this).

    Exit code 0 when the review set was written, 2 on a usage error, 3 when a --pred or
    --truth file is unreadable, empty or has a bad line (the error names it).
    """
    from angioscribe.evaluate.blind_review import export_review
    from angioscribe.report.records import read_drafts, read_truths

    try:
        drafts = [d for path in pred for d in read_drafts(path)]
        truths = read_truths(truth, images) if truth else {}
        written = export_review(drafts, out, seed, truths)
    except InputError as error:
        refuse(error)
    typer.echo(
        f"{len(drafts)} drafts blinded; reviewer gets {written['sheet']} and "
        f"{written['page']}; keep {written['key']} apart",
        err=True,
    )


@app.command("import")
def import_(
    sheet: Annotated[Path, typer.Argument(help="The filled review_sheet.csv.")],
    key: Annotated[Path, typer.Option("--key", help="review_key.json written by export.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for table and Figure 6.")
    ] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", min=10, help="Bootstrap resamples.")] = 1000,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Table 4 from the clinician's scores: overall mean/SD and drafts with each error.

    Exit code 0 when every draft of the key was scored and tabled, 2 on a usage error, 3 when
    the sheet or key cannot be used (unreadable, a bad cell, a draft left unscored: the error
    names the file and line).
    """
    from angioscribe.evaluate.blind_review import import_review
    from angioscribe.evaluate.report_figures import score_histograms
    from angioscribe.evaluate.report_tables import error_table

    try:
        scores = import_review(sheet, key)
    except InputError as error:
        refuse(error, as_json)
    table = error_table(scores, n_boot=n_boot, seed=seed)
    if as_json:
        print_records(table, True, ())
    else:
        print_records([error_display(row) for row in table], False, error_display_columns(table))
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "review_table.json").write_text(json_document(table))
        score_histograms(scores, out / "review_scores.png")
        typer.echo(f"wrote {out}/review_table.json and review_scores.png", err=True)


@app.command("serve")
def serve(
    target: TargetArgument,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    blind: Annotated[
        Path | None,
        typer.Option("--blind", help="A set from `review export`: score it under its codes."),
    ] = None,
    organization: Annotated[
        str, typer.Option("--organization", help="Verifying organization of signed SRs.")
    ] = "angioscribe review",
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="HTTPS certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="HTTPS private key.")] = None,
    user_failures: Annotated[
        int, typer.Option("--user-failures", min=1,
                          help="Failed log-ins for one user name that lock it.")
    ] = 5,
    address_failures: Annotated[
        int, typer.Option("--address-failures", min=1,
                          help="Failed log-ins from one client address that lock it.")
    ] = 20,
    failure_window: Annotated[
        int, typer.Option("--failure-window", min=1, help="Minutes in which failures count.")
    ] = 15,
    lock_minutes: Annotated[
        int, typer.Option("--lock-minutes", min=1, help="Minutes a locked name or address "
                                                        "is refused log-ins.")
    ] = 15,
) -> None:
    """The review page: studies, evidence, drafts to edit, score and sign (docs/review.md).

    Runs until stopped (Ctrl-C). Exit code 2 on a usage error, 3 when the target, the config
    or the blind set cannot be used.
    """
    from datetime import timedelta

    import uvicorn

    from angioscribe.review.app import Review, create_app
    from angioscribe.review.blind import load_blind_set
    from angioscribe.review.store import ReviewStore
    from angioscribe.review.studies import open_target
    from angioscribe.review.throttle import LoginLimits

    try:
        opened = open_target(target)
        blind_set = load_blind_set(blind) if blind else None
        store = ReviewStore(opened.store_url)
        check_tls_files(tls_cert, tls_key)
    except InputError as error:
        refuse(error)
    if not store.users():
        typer.echo("no user yet: add one with `angioscribe review user add`", err=True)
    limits = LoginLimits(user_failures, address_failures, timedelta(minutes=failure_window),
                         timedelta(minutes=lock_minutes))
    app_ = create_app(Review(opened, store, blind_set, organization, login_limits=limits))
    typer.echo(f"review page on http{'s' if tls_cert else ''}://{host}:{port}/", err=True)
    uvicorn.run(app_, host=host, port=port, log_level="warning", server_header=False,
                ssl_certfile=tls_cert, ssl_keyfile=tls_key)


def check_tls_files(cert: Path | None, key: Path | None) -> None:
    """Refuse a certificate without its key (or the reverse), and a pair that does not load
    as an HTTPS server's, before the server starts: uvicorn would otherwise fail with a
    traceback, or a page meant for HTTPS would be served in plain HTTP."""
    import ssl

    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise InputError("--tls-cert/--tls-key", "HTTPS needs both the certificate and its key")
    for path in (cert, key):
        if not path.is_file():
            raise InputError(path, "no such file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as error:
        raise InputError(cert, f"not a certificate that goes with {key}: {error}") from None


@user_app.command("add")
def user_add(
    target: TargetArgument,
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ -).")],
    role: Annotated[str, typer.Option("--role", help="reader or admin.")] = "reader",
) -> None:
    """Add a user, or set an existing user's password and role; the password is read from
    stdin (one line). Their sessions end. Exit code 0 when saved, 2 on a usage error, 3 when
    the target is unusable or the name, role or password refused."""
    import sys

    from angioscribe.review.auth import add_user
    from angioscribe.review.store import ReviewStore
    from angioscribe.review.studies import open_target

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {name}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        store = ReviewStore(open_target(target).store_url)
        add_user(store, name, password, role, by="cli")
    except InputError as error:
        refuse(error)
    typer.echo(f"user {name} ({role}) saved", err=True)


@user_app.command("list")
def user_list(target: TargetArgument, as_json: JsonOption = False) -> None:
    """The review page's users and their roles. Exit code 0, 3 when the target is
    unusable."""
    store = _store(target)
    print_records([{"name": user.name, "role": user.role} for user in store.users()], as_json,
                  ("name", "role"))


@user_app.command("remove")
def user_remove(
    target: TargetArgument,
    name: Annotated[str, typer.Argument(help="User name to remove.")],
) -> None:
    """Remove a user and end their sessions (audited); their edits and signatures stay under
    their name. Exit code 0 when removed, 2 on a usage error, 3 when the target is unusable or
    there is no such user."""
    store = _store(target)
    try:
        store.remove_user(name, by="cli")
    except InputError as error:
        refuse(error)
    typer.echo(f"user {name} removed", err=True)


def _store(target: str) -> ReviewStore:
    """The review store of `target`, or exit 3 naming what is wrong with it."""
    from angioscribe.review.store import ReviewStore
    from angioscribe.review.studies import open_target

    try:
        return ReviewStore(open_target(target).store_url)
    except InputError as error:
        refuse(error)


@user_app.command("unlock")
def user_unlock(
    target: TargetArgument,
    name: Annotated[str, typer.Argument(help="User name locked by failed log-ins.")],
) -> None:
    """End a user's lock after too many failed log-ins, and forget their failures (audited).
    Exit code 0 when done (also when the user was not locked), 2 on a usage error, 3 when the
    target is unusable."""
    from angioscribe.review.throttle import unlock_user

    ended = unlock_user(_store(target), name, by="cli")
    typer.echo(f"user {name} unlocked (was locked until {ended.until:%H:%M} UTC)" if ended
               else f"user {name} was not locked; their failed log-ins are forgotten", err=True)


@app.command("unlock-address")
def unlock_address(
    target: TargetArgument,
    address: Annotated[str, typer.Argument(help="Client address (as the page's log shows it) "
                                                "locked by failed log-ins.")],
) -> None:
    """End a client address's lock after too many failed log-ins from it, and forget its
    failures (audited). Exit code 0 when done (also when it was not locked), 2 on a usage
    error, 3 when the target is unusable."""
    from angioscribe.review import throttle

    ended = throttle.unlock_address(_store(target), address, by="cli")
    typer.echo(f"address {address} unlocked (was locked until {ended.until:%H:%M} UTC)" if ended
               else f"address {address} was not locked; its failed log-ins are forgotten",
               err=True)
