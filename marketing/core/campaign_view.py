"""The campaign pages' words (zh-CN and English) and the report as tables and CSV (pure).

The words extend the console's catalog (:mod:`keliu.accounts.i18n`): :func:`t` looks here first, then there, and a
key neither has shows as ``⟦key⟧`` (a test checks both languages hold the same keys). :func:`report_view` turns the
figures of :mod:`marketing.store.campaign_report` into the page's tables — the incremental figures (lift against the
holdout) and the attributed (last-touch) ones side by side, never one instead of the other — and :func:`to_csv`
writes the same tables with plain numbers (each interval's ends in columns of their own).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from keliu.accounts import i18n as console_i18n
from marketing.core.lift import Comparison, Estimate, LiftReport

CATALOG: dict[str, dict[str, str]] = {
    "zh-CN": {
        "campaigns_title": "营销活动",
        "new_campaign": "新建活动",
        "edit_campaign": "编辑活动",
        "col_campaign": "活动",
        "col_scope": "范围",
        "col_trigger": "触发",
        "col_channel": "渠道",
        "col_status": "状态",
        "no_campaigns": "暂无活动",
        "status_draft": "草稿",
        "status_approved": "已批准",
        "status_paused": "已暂停",
        "status_archived": "已归档",
        "approve": "批准",
        "pause": "暂停",
        "archive": "归档",
        "edit": "编辑",
        "report": "报告",
        "create": "创建",
        "f_name": "活动名称",
        "f_scope": "范围（门店或商圈）",
        "f_trigger": "触发条件",
        "f_dwell_minutes": "停留分钟数（停留触发）",
        "f_lapsed_days": "未到访天数（流失触发）",
        "f_expiring_hours": "到期前小时数（券将到期触发）",
        "f_scheduled_at": "定时发送时间（门店当地时间）",
        "f_segment": "人群条件（每行一条，例如 visits >= 3；可用：visits、last_visit_days、logins、purchases、"
                     "redemptions、store；标签：tag in vip, student 或 tag not in staff）",
        "f_channel": "渠道",
        "f_category": "内容类别",
        "f_provider": "短信服务商",
        "f_message": "消息内容",
        "f_template_id": "模板 ID（短信、微信须为已审核模板）",
        "f_webhook_url": "Webhook 地址（webhook 渠道，https://…）",
        "f_offer": "附带优惠（每位发送对象发一张券，券码写入消息中的 {coupon} 处或末尾；短信不含券码）",
        "f_no_offer": "不附带",
        "f_consents": "同意依据（发送所需的同意，缺一不可）",
        "f_control_pct": "对照组比例（%）",
        "f_window_days": "观察窗口（天）",
        "f_cooldown_hours": "同一会员再次发送间隔（小时）",
        "f_message_cost_cents": "每条消息成本（分）",
        "trigger_login_first": "首次连接 Wi-Fi",
        "trigger_login_return": "再次连接 Wi-Fi",
        "trigger_visit": "到店（需位置同意）",
        "trigger_dwell": "停留达到 N 分钟（需位置同意）",
        "trigger_lapsed": "N 天未到访",
        "trigger_expiring": "券将到期",
        "trigger_scheduled": "定时发送给人群",
        "channel_splash": "Wi-Fi 成功页",
        "channel_sms": "短信",
        "channel_wechat": "微信",
        "channel_webhook": "Webhook",
        "channel_wechat_card": "微信会员卡",
        "category_notice": "通知",
        "category_coupon": "优惠券推广",
        "category_winback": "用户召回",
        "category_visit_invite": "邀请到店",
        "category_member_benefit": "会员权益",
        "purpose_marketing": "营销信息（总）",
        "purpose_sms_marketing": "短信营销",
        "purpose_wechat_marketing": "微信营销",
        "purpose_presence_offers": "基于到店位置的优惠（行踪轨迹，敏感个人信息）",
        "purpose_trade_area": "商圈优惠",
        "saved": "已保存。",
        "created": "活动已创建（草稿）。",
        "done_approve": "活动已批准。",
        "done_pause": "活动已暂停。",
        "done_archive": "活动已归档。",
        "err_form": "请修改以下问题后再保存：",
        "err_name_len": "活动名称须为 1–200 个字符。",
        "err_scope_choice": "请选择您有权管理的门店或商圈。",
        "err_choice": "请从以下选项中选择：{choices}。",
        "err_range": "须为 {low} 到 {high} 之间的整数。",
        "err_scheduled_at": "定时发送时间须为日期和时间（YYYY-MM-DDTHH:MM）。",
        "err_segment_syntax": "无法理解的人群条件：“{text}”（格式：事实 运算符 值）。",
        "err_segment_number": "{fact} 须与非负整数比较（不是 “{value}”）。",
        "err_segment_op": "{fact} 只能用 = 或 !=（不是 {op}）。",
        "err_segment_fact": "未知的会员事实 “{fact}”；可用：{facts}。",
        "err_segment_tag_op": "标签条件写作 “tag in 标签1, 标签2”（有其一）或 “tag not in 标签”（都没有），不能用 {op}。",
        "err_segment_tag_text": "“{text}” 不是有效的标签（1–32 个字母、数字、_ 或 -，以逗号分隔）。",
        "err_segment_tag": "没有会员带有标签 {tags}（可能写错了）；现有标签：{known}。",
        "err_message_len": "消息内容须为 1–{max} 个字符。",
        "err_card_text": "会员卡消息栏最多 {max} 个字符。",
        "err_template_id": "模板 ID 过长或含不可见字符。",
        "err_template_required": "短信和微信须填写服务商已审核的模板 ID。",
        "err_sms_category": "{provider} 不允许通过短信发送“{category}”类内容（腾讯云禁止优惠券推广、用户召回、"
                            "邀请到店）。",
        "err_sms_words": "短信内容含有 {provider} 禁止的内容：{words}。",
        "err_sms_suffix": "营销短信须以退订提示“{suffix}”结尾（工信部令第 31 号）。",
        "err_offer": "请选择本范围内的优惠。",
        "err_sms_offer": "{provider} 禁止通过短信推广优惠券：短信活动不能附带优惠（请改用微信、Wi-Fi 成功页或 Webhook）。",
        "err_offer_required": "“券将到期”触发须附带一个优惠。",
        "err_webhook_url": "Webhook 渠道须填写 http(s) 地址（最多 500 个字符）。",
        "err_approval": "活动未通过审核检查，请先修改以下问题：",
        "err_consent_basis": "活动必须有同意依据：请选择发送所依据的会员同意（《个人信息保护法》第十四、十六条）。",
        "err_consent_missing": "同意依据不足，还需要：{purposes}。",
        "err_share_locked": "已有会员分组，对照组比例不能再修改。",
        "err_not_editable": "只能编辑草稿或已暂停的活动（请先暂停）。",
        "err_transition": "该操作不适用于活动的当前状态。",
        "not_found": "没有这个活动。",
        # the report
        "report_title": "活动报告 · {name}",
        "report_note": "意向处理（ITT）分析：所有符合条件的会员按分组计入，无论消息是否送达。增量来自与对照组的比较；"
                       "归因（最后触达）数字仅供对照，不代表活动带来的效果。",
        "tab_reach": "覆盖与发送",
        "tab_suppressed": "被抑制的发送（按原因）",
        "tab_lift": "提升（95% 置信区间）",
        "tab_incremental": "增量与归因（最后触达）",
        "col_metric": "指标",
        "col_value": "数值",
        "col_reason": "原因",
        "col_count": "次数",
        "col_treatment": "实验组",
        "col_control": "对照组",
        "col_difference": "差值 [95% CI]",
        "col_lift": "相对提升 [95% CI]",
        "col_incremental": "增量 [95% CI]",
        "col_attributed": "归因（最后触达）",
        "m_eligible": "符合条件",
        "m_treatment": "实验组",
        "m_control": "对照组（不发送）",
        "m_sent": "已发送",
        "m_delivered": "已送达（渠道回执）",
        "m_suppressed": "被抑制",
        "m_redeemed": "核销（净）",
        "m_discount": "优惠成本",
        "m_cost": "总成本（优惠 + 消息）",
        "m_visits_treatment": "实验组到访次数（Wi-Fi 登录 + 探针）",
        "m_visits_control": "对照组到访次数（Wi-Fi 登录 + 探针）",
        "cuped_on": "已用活动前 28 天的到访次数做 CUPED 调整（缩小置信区间，不改变期望差值）。",
        "cuped_off": "未做 CUPED 调整（活动前 28 天的到访次数没有差异）。",
        "m_visit_rate": "到访率",
        "m_purchase_rate": "购买率",
        "m_revenue_per_member": "人均消费",
        "m_visitors": "到访会员",
        "m_buyers": "购买会员",
        "m_revenue": "消费额",
        "m_redemptions": "核销",
        "m_iroas": "iROAS（增量收入 ÷ 成本）",
        "m_roas": "ROAS",
        "not_estimable": "无法估计",
        "reason_withdrawn": "会员已退订",
        "reason_quiet_hours": "免打扰时段",
        "reason_provider_hours": "服务商禁发时段",
        "reason_offer": "券未能发放",
        "reason_cooldown": "冷却期内",
        "reason_daily_cap": "已达每日上限",
        "reason_channel_cap": "已达渠道上限",
        "reason_no_card": "未激活微信会员卡",
        "reason_duplicate": "重复",
        "download_csv": "导出 CSV",
        "sample_title": "样本量计算",
        "sample_baseline": "基线比率（%，例如对照组到访率）",
        "sample_lift": "希望检测的相对提升（%）",
        "sample_control": "对照组比例（%）",
        "sample_compute": "计算",
        "sample_answer": "需要 {n} 名符合条件的会员（双侧 α = 5%，检验效能 80%）。",
        "sample_error": "请输入 0–100 之间的基线比率、非零提升和 1–99 的对照组比例（提升后比率须小于 100%）。",
    },
    "en": {
        "campaigns_title": "Campaigns",
        "new_campaign": "New campaign",
        "edit_campaign": "Edit campaign",
        "col_campaign": "Campaign",
        "col_scope": "Scope",
        "col_trigger": "Trigger",
        "col_channel": "Channel",
        "col_status": "Status",
        "no_campaigns": "No campaigns",
        "status_draft": "draft",
        "status_approved": "approved",
        "status_paused": "paused",
        "status_archived": "archived",
        "approve": "Approve",
        "pause": "Pause",
        "archive": "Archive",
        "edit": "Edit",
        "report": "Report",
        "create": "Create",
        "f_name": "Name",
        "f_scope": "Scope (a store or a trade area)",
        "f_trigger": "Trigger",
        "f_dwell_minutes": "Dwell minutes (dwell trigger)",
        "f_lapsed_days": "Days without a visit (lapsed trigger)",
        "f_expiring_hours": "Hours before expiry (coupon expiry trigger)",
        "f_scheduled_at": "Send at (store-local time)",
        "f_segment": "Segment (one condition a line, e.g. visits >= 3; facts: visits, last_visit_days, logins, "
                     "purchases, redemptions, store; tags: tag in vip, student or tag not in staff)",
        "f_channel": "Channel",
        "f_category": "Content category",
        "f_provider": "SMS provider",
        "f_message": "Message",
        "f_template_id": "Template id (SMS and WeChat: an approved template)",
        "f_webhook_url": "Webhook URL (webhook channel, https://…)",
        "f_offer": "Offer to attach (one coupon to each member sent to; its code replaces {coupon} in the message, "
                   "or follows it; never in an SMS)",
        "f_no_offer": "none",
        "f_consents": "Consent basis (every consent the sends need)",
        "f_control_pct": "Holdout share (%)",
        "f_window_days": "Window (days)",
        "f_cooldown_hours": "Cooldown per member (hours)",
        "f_message_cost_cents": "Cost per message (fen)",
        "trigger_login_first": "First Wi-Fi login",
        "trigger_login_return": "Returning Wi-Fi login",
        "trigger_visit": "Visit started (presence consent)",
        "trigger_dwell": "Dwell of N minutes (presence consent)",
        "trigger_lapsed": "Lapsed for N days",
        "trigger_expiring": "Coupon about to expire",
        "trigger_scheduled": "Scheduled send to a segment",
        "channel_splash": "Wi-Fi success page",
        "channel_sms": "SMS",
        "channel_wechat": "WeChat",
        "channel_webhook": "Webhook",
        "channel_wechat_card": "WeChat member card",
        "category_notice": "Notice",
        "category_coupon": "Coupon promotion",
        "category_winback": "Win-back",
        "category_visit_invite": "Visit invitation",
        "category_member_benefit": "Member benefit",
        "purpose_marketing": "Marketing (general)",
        "purpose_sms_marketing": "SMS marketing",
        "purpose_wechat_marketing": "WeChat marketing",
        "purpose_presence_offers": "Presence-based offers (movement tracks: sensitive personal information)",
        "purpose_trade_area": "Trade-area offers",
        "saved": "Saved.",
        "created": "Campaign created (draft).",
        "done_approve": "Campaign approved.",
        "done_pause": "Campaign paused.",
        "done_archive": "Campaign archived.",
        "err_form": "Please fix these before saving:",
        "err_name_len": "A name is 1–200 characters.",
        "err_scope_choice": "Choose a store or trade area you manage.",
        "err_choice": "Choose one of: {choices}.",
        "err_range": "A whole number from {low} to {high}.",
        "err_scheduled_at": "The send time is a date and time (YYYY-MM-DDTHH:MM).",
        "err_segment_syntax": "Cannot read the segment condition \"{text}\" (fact operator value).",
        "err_segment_number": "{fact} compares with a whole number, not \"{value}\".",
        "err_segment_op": "{fact} takes = or != only, not {op}.",
        "err_segment_fact": "Unknown member fact \"{fact}\"; known: {facts}.",
        "err_segment_tag_op": "A tag condition reads \"tag in a, b\" (has any of them) or \"tag not in a\" (has none), "
                              "not {op}.",
        "err_segment_tag_text": "\"{text}\" is not a list of tags (1-32 letters, digits, _ or -, comma-separated).",
        "err_segment_tag": "No member carries the tag {tags} (a typo?); the tags in use: {known}.",
        "err_message_len": "A message is 1–{max} characters.",
        "err_card_text": "The member card's message line takes at most {max} characters.",
        "err_template_id": "The template id is too long or has invisible characters.",
        "err_template_required": "SMS and WeChat need the provider's approved template id.",
        "err_sms_category": "{provider} forbids \"{category}\" content in SMS (Tencent Cloud: coupon promotion, "
                            "win-back, visit invitations).",
        "err_sms_words": "The SMS text has content {provider} forbids: {words}.",
        "err_sms_suffix": "A marketing SMS must end with the refusal suffix \"{suffix}\" (MIIT Order 31).",
        "err_offer": "Choose an offer of this scope.",
        "err_sms_offer": "{provider} forbids coupon promotion by SMS: an SMS campaign cannot carry an offer (use "
                         "WeChat, the Wi-Fi success page or a webhook).",
        "err_offer_required": "A coupon expiry trigger needs an offer.",
        "err_webhook_url": "The webhook channel needs an http(s) URL (at most 500 characters).",
        "err_approval": "The campaign fails the approval checks; fix these first:",
        "err_consent_basis": "A campaign needs a consent basis: choose the members' consents its sends rely on "
                             "(PIPL arts. 14, 16).",
        "err_consent_missing": "The consent basis does not cover the sends; add: {purposes}.",
        "err_share_locked": "Members were already assigned: the holdout share can no longer change.",
        "err_not_editable": "Only a draft or a paused campaign can be edited (pause it first).",
        "err_transition": "That action does not apply to the campaign's status.",
        "not_found": "No such campaign.",
        "report_title": "Campaign report · {name}",
        "report_note": "Intent to treat: every eligible member counts in their arm, whether a message reached them "
                       "or not. Incremental figures compare with the holdout; the attributed (last-touch) figures "
                       "are shown for comparison and are not what the campaign caused.",
        "tab_reach": "Reach and sends",
        "tab_suppressed": "Suppressed sends by reason",
        "tab_lift": "Lift (95 % confidence interval)",
        "tab_incremental": "Incremental and attributed (last touch)",
        "col_metric": "Metric",
        "col_value": "Value",
        "col_reason": "Reason",
        "col_count": "Count",
        "col_treatment": "Treatment",
        "col_control": "Control",
        "col_difference": "Difference [95 % CI]",
        "col_lift": "Relative lift [95 % CI]",
        "col_incremental": "Incremental [95 % CI]",
        "col_attributed": "Attributed (last touch)",
        "m_eligible": "Eligible",
        "m_treatment": "Treatment",
        "m_control": "Control (held out)",
        "m_sent": "Sent",
        "m_delivered": "Delivered (channel receipt)",
        "m_suppressed": "Suppressed",
        "m_redeemed": "Redeemed (net)",
        "m_discount": "Discount cost",
        "m_cost": "Total cost (discounts + messages)",
        "m_visits_treatment": "Visits of the treatment (Wi-Fi logins + sensor)",
        "m_visits_control": "Visits of the control (Wi-Fi logins + sensor)",
        "cuped_on": "Adjusted by CUPED with the visits of the 28 days before eligibility (a narrower interval, the "
                    "same expected difference).",
        "cuped_off": "Not adjusted by CUPED (the visits of the 28 days before eligibility do not vary).",
        "m_visit_rate": "Visit rate",
        "m_purchase_rate": "Purchase rate",
        "m_revenue_per_member": "Revenue per member",
        "m_visitors": "Visiting members",
        "m_buyers": "Buying members",
        "m_revenue": "Revenue",
        "m_redemptions": "Redemptions",
        "m_iroas": "iROAS (incremental revenue ÷ cost)",
        "m_roas": "ROAS",
        "not_estimable": "not estimable",
        "reason_withdrawn": "member refused",
        "reason_quiet_hours": "quiet hours",
        "reason_provider_hours": "hours the provider forbids",
        "reason_offer": "coupon could not be issued",
        "reason_cooldown": "cooldown",
        "reason_daily_cap": "daily cap reached",
        "reason_channel_cap": "channel cap reached",
        "reason_no_card": "no activated WeChat member card",
        "reason_duplicate": "duplicate",
        "download_csv": "Download CSV",
        "sample_title": "Sample size",
        "sample_baseline": "Baseline rate (%, e.g. the control's visit rate)",
        "sample_lift": "Relative lift to detect (%)",
        "sample_control": "Holdout share (%)",
        "sample_compute": "Compute",
        "sample_answer": "{n} eligible members are needed (two-sided α = 5 %, power 80 %).",
        "sample_error": "Give a baseline rate between 0 and 100, a non-zero lift and a holdout of 1–99 % (the "
                        "lifted rate must stay below 100 %).",
    },
}


def t(lang: str, key: str, **kw: object) -> str:
    """A campaign page's word (else the console's; ``⟦key⟧`` when neither catalog has it)."""
    text = CATALOG.get(lang, CATALOG["zh-CN"]).get(key)
    if text is None:
        return console_i18n.t(lang, key, **kw)
    return text.format(**kw) if kw else text


def problem_text(lang: str, key: str, params: Mapping[str, Any]) -> str:
    """An editor's problem in words: a category and the missing consents are named as the form names them."""
    words = dict(params)
    if "category" in words:
        words["category"] = t(lang, f"category_{words['category']}")
    if "purposes" in words:
        words["purposes"] = ("、" if lang == "zh-CN" else ", ").join(
            t(lang, f"purpose_{p.strip()}") for p in str(words["purposes"]).split(","))
    return t(lang, key, **words)


def reason_text(lang: str, reason: str) -> str:
    """A suppression reason in words (``no_consent:<purpose>`` names the purpose)."""
    if reason.startswith("no_consent:"):
        purpose = reason.split(":", 1)[1]
        return ("未同意：" if lang == "zh-CN" else "no consent: ") + t(lang, f"purpose_{purpose}")
    if reason.startswith("offer:"):
        return f"{t(lang, 'reason_offer')}: {reason.split(':', 1)[1]}"
    key = f"reason_{reason}"
    return t(lang, key) if key in CATALOG["en"] else reason


def yuan(cents: float | None) -> str:
    return "—" if cents is None else f"¥{cents / 100:,.2f}"


def _fmt(v: float | None, kind: str) -> str:
    if v is None:
        return "—"
    if kind == "pct":
        return f"{v * 100:.1f}%"
    if kind == "yuan":
        return yuan(v)
    if kind == "ratio":
        return f"{v:.2f}"
    return f"{v:,.1f}" if not float(v).is_integer() else f"{int(v):,}"


def _est(lang: str, e: Estimate, kind: str) -> dict[str, Any]:
    if e.value is None:
        return {"text": t(lang, "not_estimable"), "csv": ["", "", ""]}
    text = _fmt(e.value, kind)
    if e.low is not None and e.high is not None:
        text += f" [{_fmt(e.low, kind)}, {_fmt(e.high, kind)}]"
    return {"text": text, "csv": [e.value, e.low, e.high], "value": e.value, "low": e.low, "high": e.high}


def _plain(text: str, value: Any = None) -> dict[str, Any]:
    return {"text": text, "csv": [value if value is not None else text]}


def _comparison(lang: str, key: str, c: Comparison, kind: str) -> list[dict[str, Any]]:
    return [_plain(t(lang, key)), _plain(_fmt(c.mean_treatment, kind), c.mean_treatment),
            _plain(_fmt(c.mean_control, kind), c.mean_control), _est(lang, c.difference, kind),
            _est(lang, c.lift, "pct")]


def report_view(lang: str, campaign: Mapping[str, Any], f: Mapping[str, Any], lift: LiftReport) -> dict[str, Any]:
    """The report's tables. ``f``: the counts of :class:`marketing.store.campaign_report.Figures` as a mapping."""
    reach = [("m_eligible", f["eligible"], "n"), ("m_treatment", f["treatment"], "n"),
             ("m_control", f["control"], "n"), ("m_sent", f["sent"], "n"), ("m_delivered", f["delivered"], "n"),
             ("m_suppressed", sum(f["suppressed"].values()), "n"), ("m_redeemed", f["redeemed"], "n"),
             ("m_discount", f["discount_cents"], "yuan"), ("m_cost", f["cost_cents"], "yuan"),
             ("m_visits_treatment", f.get("visits_treatment", 0), "n"),
             ("m_visits_control", f.get("visits_control", 0), "n")]
    cost = float(f["cost_cents"])
    roas = f["attributed_revenue_cents"] / cost if cost > 0 else None
    attributed_revenue = f["attributed_revenue_cents"]
    tables = [
        {"id": "reach", "title": t(lang, "tab_reach"), "columns": [t(lang, "col_metric"), t(lang, "col_value")],
         "csv_columns": [t(lang, "col_metric"), t(lang, "col_value")],
         "rows": [[_plain(t(lang, k)), _plain(_fmt(v, kind), v)] for k, v, kind in reach]},
        {"id": "suppressed", "title": t(lang, "tab_suppressed"),
         "columns": [t(lang, "col_reason"), t(lang, "col_count")],
         "csv_columns": [t(lang, "col_reason"), t(lang, "col_count")],
         "rows": [[_plain(reason_text(lang, r)), _plain(f"{n:,}", n)] for r, n in sorted(f["suppressed"].items())]},
        {"id": "lift", "title": t(lang, "tab_lift"),
         "columns": [t(lang, "col_metric"), t(lang, "col_treatment"), t(lang, "col_control"),
                     t(lang, "col_difference"), t(lang, "col_lift")],
         "csv_columns": [t(lang, "col_metric"), t(lang, "col_treatment"), t(lang, "col_control"),
                         *_ci(t(lang, "col_difference")), *_ci(t(lang, "col_lift"))],
         "rows": [_comparison(lang, "m_visit_rate", lift.visit_rate, "pct"),
                  _comparison(lang, "m_purchase_rate", lift.purchase_rate, "pct"),
                  _comparison(lang, "m_revenue_per_member", lift.revenue_per_member, "yuan")]},
        {"id": "incremental", "title": t(lang, "tab_incremental"),
         "columns": [t(lang, "col_metric"), t(lang, "col_incremental"), t(lang, "col_attributed")],
         "csv_columns": [t(lang, "col_metric"), *_ci(t(lang, "col_incremental")), t(lang, "col_attributed")],
         "rows": [
             [_plain(t(lang, "m_visitors")), _est(lang, lift.incremental_visits, "n"), _plain("—", "")],
             [_plain(t(lang, "m_buyers")), _est(lang, lift.incremental_buyers, "n"),
              _plain(_fmt(f["attributed_buyers"], "n"), f["attributed_buyers"])],
             [_plain(t(lang, "m_revenue")), _est(lang, lift.incremental_revenue_cents, "yuan"),
              _plain(yuan(attributed_revenue), attributed_revenue)],
             [_plain(t(lang, "m_redemptions")), _plain("—", ""),
              _plain(_fmt(f["attributed_redemptions"], "n"), f["attributed_redemptions"])],
             [_plain(t(lang, "m_iroas") + " / " + t(lang, "m_roas")), _est(lang, lift.iroas, "ratio"),
              _plain(_fmt(roas, "ratio"), roas)],
         ]},
    ]
    note = t(lang, "report_note") + " " + t(lang, "cuped_on" if f.get("cuped") else "cuped_off")
    return {"lang": lang, "title": t(lang, "report_title", name=campaign["name"]), "note": note,
            "campaign": dict(campaign), "tables": tables}


def _ci(name: str) -> list[str]:
    return [name, name + " low", name + " high"]


def to_csv(view: Mapping[str, Any]) -> str:
    """The report's tables as CSV: money in cents, rates as ratios 0–1, each interval's ends in columns of their
    own; a UTF-8 byte order mark first (Excel on Chinese Windows)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([view["title"]])
    w.writerow([view["note"]])
    w.writerow([])
    for tab in view["tables"]:
        w.writerow([tab["title"]])
        w.writerow(tab["csv_columns"])
        for row in tab["rows"]:
            w.writerow([_csv_value(v) for cell in row for v in cell["csv"]])
        w.writerow([])
    return "\ufeff" + buf.getvalue()


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.6f}".rstrip("0").rstrip(".")
    return str(v)
