"""``keliu member``: a member's rights from the command line (export, correct, delete), the import of members
from a store's CRM, and member tags for campaign segments (``keliu member tag add|remove|list``; composition root:
builds the portal's services from the configuration).

Every command is recorded in the staff audit trail as ``cli:<login name>`` from ``local``. Members are named by
their phone number (any spelling :func:`portal.core.phone.normalize` accepts).
"""
from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any

import click

from keliu import audit
from keliu.errors import KeliuError
from marketing.errors import FieldInvalid
from marketing.store import tags as member_tags
from portal.app import create_app
from portal.core import phone as phones
from portal.core import rights_text
from portal.store import member_import, rights


def _app() -> Any:
    return create_app()


def _actor() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:unknown"


def _member_id(conn: Any, raw_phone: str) -> int:

    e164 = phones.normalize(raw_phone)
    mid = rights.find(conn, e164)
    if mid is None:
        raise KeliuError(f"no member with the number {phones.mask(e164)}")
    return mid


@click.group("member")
def member() -> None:
    """A member's rights (PIPL arts. 44–47): export, correct, delete; importing members from a CRM; tags."""


def _member_ref(conn: Any, ref: str) -> int:
    """A member named by phone number, or by id as ``id:123`` (a WeChat-only member has no number)."""
    if ref.startswith("id:"):
        raw = ref[3:]
        mid = rights.member_row(conn, int(raw)).id if raw.isdigit() else None
        if mid is None:
            raise KeliuError(f"member: expected id:<number>, got {ref!r}")
        return int(mid)
    return _member_id(conn, ref)


@member.group("tag")
def tag() -> None:
    """Member tags, for campaign segments (``tag in vip, student``). Recorded in the audit trail."""


def _tag_change(ref: str, names: tuple[str, ...], add: bool) -> None:
    app = _app()
    svc = app.extensions["keliu"]
    now = svc.now()
    try:
        with svc.engine.begin() as conn:
            mid = _member_ref(conn, ref)
            changed = [t for t in names if (member_tags.set_tag(conn, mid, t, _actor(), now) if add
                                            else member_tags.unset_tag(conn, mid, t))]
            audit.record(conn, _actor(), "member.tag" if add else "member.untag", f"member:{mid}", "local",
                         {"tags": changed}, mall_id=rights.mall_of(conn, mid), now=now)
            held = member_tags.tags_of(conn, mid)
    except FieldInvalid as exc:
        raise KeliuError(str(exc)) from exc
    click.echo(f"member #{mid}: {', '.join(held) or '(no tags)'}")


@tag.command("add")
@click.argument("member_ref", metavar="MEMBER")
@click.argument("names", nargs=-1, required=True, metavar="TAG...")
def tag_add(member_ref: str, names: tuple[str, ...]) -> None:
    """Give MEMBER (a phone number, or id:<n>) the TAGs."""
    _tag_change(member_ref, names, add=True)


@tag.command("remove")
@click.argument("member_ref", metavar="MEMBER")
@click.argument("names", nargs=-1, required=True, metavar="TAG...")
def tag_remove(member_ref: str, names: tuple[str, ...]) -> None:
    """Take the TAGs from MEMBER (a phone number, or id:<n>)."""
    _tag_change(member_ref, names, add=False)


@tag.command("list")
@click.argument("member_ref", metavar="MEMBER")
def tag_list(member_ref: str) -> None:
    """MEMBER's tags, one a line."""
    app = _app()
    with app.extensions["keliu"].engine.connect() as conn:
        for t in member_tags.tags_of(conn, _member_ref(conn, member_ref)):
            click.echo(t)


@member.command("export")
@click.argument("phone")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="json", show_default=True)
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True,
              help="Language of the text format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (default: the screen).")
def export_cmd(phone: str, fmt: str, lang: str, output: Path | None) -> None:
    """Everything keliu holds about the member with PHONE (JSON, or readable text)."""

    app = _app()
    svc = app.extensions["keliu"]
    with svc.engine.begin() as conn:
        mid = _member_id(conn, phone)
        data = rights.export(conn, mid, app.extensions["keliu.member_components"], svc.now())
        audit.record(conn, _actor(), "member.export", f"member:{mid}", "local", {"format": fmt},
                     mall_id=rights.mall_of(conn, mid), now=svc.now())
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n" if fmt == "json" else rights_text.as_text(data, lang)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"member #{mid}: written to {output}", err=True)


@member.command("correct")
@click.argument("phone")
@click.option("--new-phone", required=True, help="The member's correct number.")
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
def correct_cmd(phone: str, new_phone: str, reason: str) -> None:
    """Correct the phone number of the member with PHONE (an operator's correction, on record)."""

    app = _app()
    svc = app.extensions["keliu"]
    with svc.engine.begin() as conn:
        mid = _member_id(conn, phone)
        rights.change_phone(conn, mid, phones.normalize(new_phone))
        audit.record(conn, _actor(), "member.correct", f"member:{mid}", "local",
                     {"field": "phone", "reason": reason[:200]}, mall_id=rights.mall_of(conn, mid), now=svc.now())
    click.echo(f"member #{mid}: phone corrected")


@member.command("delete")
@click.argument("phone")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_cmd(phone: str, yes: bool) -> None:
    """Delete the member with PHONE everywhere (their open sessions end first). The access log the law requires
    keeps its records until its retention ends."""

    app = _app()
    svc = app.extensions["keliu"]
    with svc.engine.connect() as conn:
        mid = _member_id(conn, phone)
    if not yes:
        click.confirm(f"Delete member #{mid} and all their data?", abort=True)
    rights.delete_member(svc, mid, app.extensions["keliu.member_components"], _actor(), "local")
    click.echo(f"member #{mid}: deleted")


@member.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--store", default=None, help="The store of rows without a 'store' column (default: [portal] store).")
@click.option("--all-or-nothing", is_flag=True, help="Import nothing if any row is rejected.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the rejected rows as CSV (line, reason) to this file.")
def import_cmd(file: Path, store: str | None, all_or_nothing: bool, report: Path | None) -> None:
    """Import members from a CRM's CSV or XLSX FILE, with the consent evidence per purpose (docs/PRIVACY.md: the
    columns). Idempotent on the phone; rows without evidence get no marketing consent; one transaction."""

    app = _app()
    svc = app.extensions["keliu"]
    result = member_import.import_file(svc.engine, file, default_store=store or svc.store_id, now=svc.now(),
                                       all_or_nothing=all_or_nothing)
    audit.record(svc.engine, _actor(), "member.import", f"file:{file.name}"[:128], "local",
                 {"created": result.created, "updated": result.updated, "consents": result.consents,
                  "rejected": len(result.rejected), "committed": result.committed}, now=svc.now())
    for r in result.rejected:
        click.echo(f"line {r.line}: {r.reason}", err=True)
    if report is not None:
        member_import.write_report(report, result.rejected)
    click.echo(f"{'imported' if result.committed else 'nothing imported'}: {result.created} new, "
               f"{result.updated} known, {result.consents} consents, {len(result.rejected)} rejected")
    if result.rejected:
        sys.exit(1)
