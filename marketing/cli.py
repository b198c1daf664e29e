"""``keliu pos import``: the POS file import's command-line edge (the click command lives in :mod:`keliu.cli`,
the composition root, which hands in the portal's member directory)."""
from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from keliu import config, db
from marketing.members import MemberDirectory, MemberTokens
from marketing.store.pos_import import Rejected, import_file

#: rejected rows printed to the terminal (all of them go to --rejects FILE)
SHOWN = 20


def run_import(path: Path, store_id: str, *, strict: bool, rejects: Path | None,
               directory: MemberDirectory | None, tokens: MemberTokens | None = None) -> None:
    """Import ``path`` for ``store_id`` into the configured database and print the report."""
    cfg = config.load()
    engine = db.make_engine(cfg.database_url, hide_parameters=True)
    shown = [0]
    out = rejects.open("w", newline="", encoding="utf-8") if rejects else None
    writer = csv.writer(out) if out else None
    if writer:
        writer.writerow(["line", "column", "reason"])

    def on_reject(r: Rejected) -> None:
        if writer:
            writer.writerow([r.line, r.field, r.reason])
        if shown[0] < SHOWN:
            click.echo(f"rejected line {r.line}: {r.field}: {r.reason}", err=True)
        shown[0] += 1

    try:
        rep = import_file(engine, path, store_id, datetime.now(UTC), directory=directory, tokens=tokens,
                          on_reject=on_reject, strict=strict)
    finally:
        if out:
            out.close()
        engine.dispose()
    if shown[0] > SHOWN:
        click.echo(f"… {shown[0] - SHOWN} more rejected rows" + (f" (all in {rejects})" if rejects else
                                                                   " (--rejects FILE lists them all)"), err=True)
    click.echo(f"import {rep.import_id}: {rep.rows_read} rows read, {rep.rows_new} new, {rep.rows_duplicate} "
               f"already recorded, {rep.rows_rejected} rejected; {rep.refunds_linked} refunds linked to their sale, "
               f"{rep.members_linked} sales linked to a member")
    sys.stdout.flush()
