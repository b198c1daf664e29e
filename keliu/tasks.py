"""The appliance's Celery app: analytics' app with marketing's tasks, the portal's adapters injected (a composition
root, like keliu.cli; the shared base's other modules import no component).

``keliu analytics worker`` / ``beat`` build their app here when started through the ``keliu`` command (keliu.cli
hands :func:`make_app` to the analytics commands), so one worker pool runs every task and one beat schedules them
all. The portal builds the same app to enqueue ``marketing.trigger_login`` after a login commits (eager, in-process,
without a broker).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from celery import Celery

from keliu.config import Config

if TYPE_CHECKING:
    from marketing.execution import Deps


class PortalSms:
    """The portal's SMS backend as marketing's :class:`marketing.channels.sms.SmsGateway` (errors translated)."""

    def __init__(self, backend: object, provider: str, templates: Mapping[str, str]) -> None:
        self.backend, self.provider, self.templates = backend, provider, templates

    def send_marketing(self, e164: str, template_id: str, params: Sequence[str], session: str) -> str:
        from marketing.errors import ChannelFailed
        from portal.errors import SmsFailed

        try:
            return str(self.backend.send_marketing(e164, template_id, params, session))  # type: ignore[attr-defined]
        except SmsFailed as exc:
            # the provider answered and refused (a bad number, a blacklist, a limit): retrying cannot help; a
            # provider that could not be reached, or asked to try later, may take it then
            raise ChannelFailed("sms", str(exc), permanent=not exc.transient) from exc


def marketing_deps(app: Celery) -> Deps:
    """marketing.execution.Deps for the worker process (engine, the portal's member adapter, the channels)."""
    from keliu import db
    from marketing.channels import PushChannel
    from marketing.channels.sms import SmsChannel
    from marketing.channels.webhook import WebhookChannel
    from marketing.channels.wechat import WechatChannel
    from marketing.channels.wechat_card import WechatCardChannel
    from marketing.execution import Deps
    from portal.edges.sms_backends import make_backend
    from portal.store.marketing_members import PortalMembers
    from portal.wechat.marketing_cards import PortalCards

    cfg: Config = app.keliu_config
    m = cfg.marketing
    channels: dict[str, PushChannel] = {
        "sms": SmsChannel(PortalSms(make_backend(cfg.sms), cfg.sms.backend, m.sms_template_map())),
        "webhook": WebhookChannel(m.webhook_timeout_s),
    }
    w = cfg.wechat
    cards = None
    if w.oauth_app_id and w.oauth_secret:
        # one client of the official account per process: the member card shares the template messages' token
        account = WechatChannel(w.api_base, w.oauth_app_id, w.oauth_secret)
        channels["wechat"] = account
        channels["wechat_card"] = WechatCardChannel(account)
        cards = PortalCards(w.oauth_app_id)
    return Deps(engine=db.make_engine(cfg.database_url, hide_parameters=True), contacts=PortalMembers(),
                channels=channels, lease=timedelta(seconds=m.send_lease_s), max_attempts=m.max_attempts,
                cards=cards)


def make_app(cfg: Config) -> Celery:
    from analytics.celery_app import make_celery
    from marketing import tasks

    def add_marketing(app: Celery) -> None:
        tasks.register(app, marketing_deps, cfg.marketing.rate_limits())

    return make_celery(cfg, extensions=(add_marketing,))
