"""The console's campaign pages (an edge: a Flask blueprint): the list, the editor, approve / pause / archive, and
the report with its CSV and the sample-size helper.

- ``GET /admin/campaigns``: the campaigns the user may see (:func:`marketing.store.campaign_admin.visible`);
- ``GET|POST /admin/campaigns/new`` and ``/admin/campaigns/<id>/edit``: the editor; the form is checked by
  :func:`marketing.core.campaign_spec.parse` and a refusal re-shows it with every problem named, nothing stored;
- ``POST /admin/campaigns/<id>/approve|pause|archive``;
- ``GET /admin/campaigns/<id>/report`` (``?baseline=&lift=&control=``: the sample-size helper) and
  ``/admin/campaigns/<id>/report.csv``.

Same login, CSRF and language as the rest of the console (``keliu.accounts.web``; the forms carry the app's CSRF
token); staff get 403 like on every console page; a campaign outside the user's stores or mall is 403. Every
create, edit, approve, pause and archive is in the audit trail (the store layer writes it in the same
transaction).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, cast

from flask import Blueprint, Flask, Response, abort, current_app, redirect, render_template, request
from sqlalchemy.engine import Engine

from keliu.accounts.users import AdminUser
from keliu.accounts.web import console_lang, console_required, current_user
from marketing.core import campaign_spec, campaign_view, contact, lift, sms_rules
from marketing.core.campaign_spec import Problem
from marketing.store import campaign_admin, campaign_report
from marketing.store import tags as member_tags
from marketing.store.campaign_admin import CampaignRefused

bp = Blueprint("marketing_campaigns", __name__, template_folder="templates")


@dataclass(frozen=True)
class _Edges:
    engine: Engine
    clock: Callable[[], float]
    sms_provider: str
    #: the configured SMS backend and its approved template per message category (what approval checks against)
    sms_backend: str
    sms_templates: Mapping[str, str]


def init_app(app: Flask, engine: Engine, clock: Callable[[], float], sms_provider: str = "tencent",
             sms_templates: Mapping[str, str] | None = None) -> None:
    """Register the pages. ``sms_provider``: the appliance's SMS backend (the editor's default provider rules, and
    approval's); ``sms_templates``: its approved template per message category (``[marketing] sms_templates``)."""
    app.extensions["marketing.campaigns"] = _Edges(engine, clock,
                                                   sms_provider if sms_provider in sms_rules.PROVIDERS else "tencent",
                                                   sms_provider, dict(sms_templates or {}))
    app.register_blueprint(bp)


def _edges() -> _Edges:
    return cast(_Edges, current_app.extensions["marketing.campaigns"])


def _now() -> datetime:
    return datetime.fromtimestamp(_edges().clock(), UTC)


def _user() -> AdminUser:
    user = current_user()
    assert user is not None  # console_required
    return user


def _render(template: str, status: int = 200, **kw: Any) -> Response:
    lang = console_lang()
    resp = Response(render_template(template, lang=lang, active="campaigns",
                                    t=lambda key, **a: campaign_view.t(lang, key, **a), **kw), status)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _choices(lang: str) -> dict[str, list[tuple[str, str]]]:
    t = campaign_view.t
    return {"trigger": [(k, t(lang, f"trigger_{k}")) for k in campaign_spec.TRIGGERS],
            "channel": [(k, t(lang, f"channel_{k}")) for k in contact.CHANNELS],
            "category": [(k, t(lang, f"category_{k}")) for k in sms_rules.CATEGORIES],
            "provider": [(k, k) for k in sorted(sms_rules.PROVIDERS)],
            "consents": [(k, t(lang, f"purpose_{k}")) for k in contact.PURPOSES]}


@bp.get("/admin/campaigns")
@console_required
def index() -> Any:
    user = _user()
    with _edges().engine.connect() as conn:
        rows = campaign_admin.visible(conn, user)
        names = campaign_admin.scope_names(conn)
        can_create = bool(campaign_admin.scopes_for(conn, user))
    done = request.args.get("done")
    return _render("marketing/campaigns.html", rows=rows, names=names, can_create=can_create,
                   done=done if done in ("created", "saved", "done_approve", "done_pause", "done_archive") else None)


def _form_values() -> dict[str, Any]:
    form: dict[str, Any] = {k: v for k, v in request.form.items() if k != "csrf_token"}
    form["consents"] = request.form.getlist("consents")
    return form


def _editor(form: dict[str, Any], problems: list[Problem], campaign_id: int | None, status: int = 200) -> Response:
    user = _user()
    with _edges().engine.connect() as conn:
        scopes = campaign_admin.scopes_for(conn, user)
        names = campaign_admin.scope_names(conn)
        offers = campaign_admin.offers_for(conn, scopes)
    lang = console_lang()
    by_field: dict[str, list[str]] = {}
    for p in problems:
        by_field.setdefault(p.field, []).append(campaign_view.problem_text(lang, p.key, p.params))
    return _render("marketing/campaign_edit.html", status, form=form, problems=by_field, campaign_id=campaign_id,
                   scopes=[(s, names.get(s, s)) for s in scopes], offers=offers, choices=_choices(lang))


def _defaults() -> dict[str, Any]:
    return {"name": "", "scope": "", "trigger": "lapsed", "channel": "sms", "category": "notice",
            "provider": _edges().sms_provider, "message": "", "template_id": "", "offer_id": "", "segment": "",
            "consents": [], "control_pct": "10", "window_days": "7", "cooldown_hours": "24",
            "message_cost_cents": "0", "dwell_minutes": "20", "lapsed_days": "30", "expiring_hours": "48",
            "scheduled_at": "", "webhook_url": ""}


def _parse(form: dict[str, Any]) -> tuple[campaign_spec.CampaignSpec | None, list[Problem]]:
    user = _user()
    with _edges().engine.connect() as conn:
        scopes = campaign_admin.scopes_for(conn, user)
        offers = campaign_admin.offers_for(conn, scopes)
        known = member_tags.known(conn)
    return campaign_spec.parse(form, scopes=scopes, offers=frozenset(offers), default_provider=_edges().sms_provider,
                               tags=known)


@bp.route("/admin/campaigns/new", methods=["GET", "POST"])
@console_required
def new() -> Any:
    user = _user()
    if request.method == "GET":
        return _editor(_defaults(), [], None)
    form = _form_values()
    spec, problems = _parse(form)
    if spec is None:
        return _editor(form, problems, None, 422)
    try:
        cid = campaign_admin.create(_edges().engine, user, spec, _now(), request.remote_addr)
    except CampaignRefused as exc:
        return _refused(exc, form, None)
    return redirect(f"/admin/campaigns?done=created&lang={console_lang()}#campaign-{cid}", 303)


def _refused(exc: CampaignRefused, form: dict[str, Any] | None, campaign_id: int | None) -> Any:
    if exc.status in (403, 404):
        abort(exc.status)
    if form is not None:
        return _editor(form, exc.problems or [Problem("form", exc.key)], campaign_id, exc.status)
    abort(exc.status, campaign_view.t(console_lang(), exc.key))


def _visible_campaign(campaign_id: int) -> campaign_admin.Campaign:
    with _edges().engine.connect() as conn:
        c = campaign_admin.load(conn, campaign_id)
        if c is None:
            abort(404)
        if not campaign_admin.may_act(conn, _user(), c):
            abort(403)
    return c


@bp.route("/admin/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@console_required
def edit(campaign_id: int) -> Any:
    c = _visible_campaign(campaign_id)
    if request.method == "GET":
        return _editor(c.form(), [], campaign_id)
    form = _form_values()
    spec, problems = _parse(form)
    if spec is None:
        return _editor(form, problems, campaign_id, 422)
    try:
        campaign_admin.update(_edges().engine, _user(), campaign_id, spec, _now(), request.remote_addr)
    except CampaignRefused as exc:
        return _refused(exc, form, campaign_id)
    return redirect(f"/admin/campaigns?done=saved&lang={console_lang()}#campaign-{campaign_id}", 303)


@bp.post("/admin/campaigns/<int:campaign_id>/<any(approve, pause, archive):action>")
@console_required
def act(campaign_id: int, action: str) -> Any:
    edges = _edges()
    try:
        campaign_admin.transition(edges.engine, _user(), campaign_id, action, _now(), request.remote_addr,
                                  sms_provider=edges.sms_backend, sms_templates=edges.sms_templates)
    except CampaignRefused as exc:
        if exc.problems:  # approval refused: the editor shows every problem beside its field
            c = _visible_campaign(campaign_id)
            return _editor(c.form(), [Problem("form", exc.key), *exc.problems], campaign_id, exc.status)
        return _refused(exc, None, campaign_id)
    return redirect(f"/admin/campaigns?done=done_{action}&lang={console_lang()}#campaign-{campaign_id}", 303)


def _report(campaign_id: int, lang: str) -> dict[str, Any]:
    c = _visible_campaign(campaign_id)
    with _edges().engine.connect() as conn:
        f = campaign_report.figures(conn, campaign_id, c.params.message_cost_cents)
    if f is None:
        abort(404)
    counts = {k: v for k, v in asdict(f).items() if k != "lift"}
    view = campaign_view.report_view(lang, {"id": c.id, "name": c.name, "status": c.status,
                                            "window_days": c.window_days,
                                            "control_share": c.control_share}, counts, f.lift)
    view["baseline"] = campaign_report.control_visit_rate(f)
    return view


def _sample_size(lang: str, baseline_default: float | None, share: float) -> dict[str, Any]:
    args = request.args
    form = {"baseline": args.get("baseline", f"{baseline_default * 100:.1f}" if baseline_default else "20"),
            "lift": args.get("lift", "10"), "control": args.get("control", f"{share * 100:g}")}
    out: dict[str, Any] = {"form": form, "answer": None, "error": None}
    if "baseline" in args:
        try:
            n = lift.sample_size(float(form["baseline"]) / 100, float(form["lift"]) / 100,
                                 float(form["control"]) / 100)
        except ValueError:
            out["error"] = campaign_view.t(lang, "sample_error")
        else:
            out["n"] = n
            out["answer"] = campaign_view.t(lang, "sample_answer", n=f"{n:,}")
    return out


@bp.get("/admin/campaigns/<int:campaign_id>/report")
@console_required
def report(campaign_id: int) -> Any:
    lang = console_lang()
    view = _report(campaign_id, lang)
    return _render("marketing/campaign_report.html", v=view,
                   sample=_sample_size(lang, view["baseline"], view["campaign"]["control_share"]))


@bp.get("/admin/campaigns/<int:campaign_id>/report.csv")
@console_required
def report_csv(campaign_id: int) -> Any:
    view = _report(campaign_id, console_lang())
    resp = Response(campaign_view.to_csv(view), mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="keliu-campaign-{campaign_id}.csv"'})
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
