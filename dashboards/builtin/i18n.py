"""Translations and number formats of the built-in dashboard: zh-CN (default) and English (pure).

The language is ``?lang=`` when given, else the best match of ``Accept-Language``, else zh-CN (as the portal does).
Numbers are formatted here, once, so that the page and the CSV export show the same text.
"""
from __future__ import annotations

LANGS = ("zh-CN", "en")
DEFAULT = "zh-CN"

CATALOG: dict[str, dict[str, str]] = {
    "en": {
        "title": "Foot traffic",
        "store_view": "Store",
        "mall_view": "Mall",
        "operator_view": "All malls",
        "range": "Dates",
        "from": "from",
        "to": "to",
        "apply": "Show",
        "export_csv": "Export CSV",
        "compare_note": "compared with the same weekdays one week earlier ({start} – {end})",
        "compare_note_until": "compared with the same weekdays one week earlier ({start} – {end}), up to {time} on"
                              " {end} (the same time as now: today is not over)",
        "this_period": "This period",
        "last_week": "Same weekday last week",
        "change": "Change",
        "metric": "Metric",
        "passersby": "Passers-by",
        "visitors": "Visitors",
        "capture_rate": "Capture rate",
        "median_dwell_s": "Median dwell",
        "new_visitors": "New visitors",
        "repeat_visitors": "Repeat visitors",
        "wifi_logins": "Wi-Fi logins",
        "new_members": "New members",
        "staff_excluded": "Staff devices excluded",
        "summary": "Summary",
        "funnel": "Funnel",
        "step": "Step",
        "count": "Count",
        "conversion": "Of previous step",
        "heard": "Heard nearby (passers-by + visitors)",
        "dwell": "Dwell time",
        "bucket": "Bucket",
        "loyalty": "New and repeat visitors (loyalty)",
        "hourly": "Hourly traffic",
        "hour": "Hour",
        "summed": " (each hour summed over the dates)",
        "visitors_last_week": "Visitors last week",
        "days": "Day by day",
        "date": "Date",
        "stores": "Stores side by side",
        "store": "Store",
        "small_multiples": "Each store: this period vs last week",
        "mall_totals": "Mall totals (each shopper once per day)",
        "transitions": "Top store-to-store transitions",
        "from_store": "From",
        "to_store": "To",
        "shoppers": "Shoppers",
        "malls": "Malls side by side",
        "mall": "Mall",
        "last_report": "Sensor last reported",
        "never": "never",
        "ago": "{age} ago",
        "empty_never": "No data yet: the sensor of this store has not sent anything.",
        "empty_range": "No data for these dates. The sensor last reported {age} ago.",
        "stale": "The sensor last reported {age} ago.",
        "loading": "Loading…",
        "logout": "Log out",
        "sort_hint": "click a column to sort",
        "first_time": "First time",
        "daily": "Daily",
        "weekly": "Weekly",
        "monthly": "Monthly",
        "occasional": "Occasional",
        "min": "{n} min",
        "s": "{n} s",
        "h": "{n} h",
        "d": "{n} d",
        "forbidden": "You may not see these numbers.",
        "no_data": "no data",
        "view": "View",
        "live_store": "In store now",
        "live_mall": "In the mall now",
        "live_band": "likely {lo}–{hi}",
        "live_detail": "last {minutes} min · staying ≥ {dwell}: {staying} · passing by: {nearby}",
        "live_heard": "sensor heard {age} ago",
        "live_silent": "nothing heard in the last {minutes} min",
        "live_connected": "on the guest Wi-Fi now: {n} (exact)",
        "connected": "Connected shoppers (exact)",
        "connected_detail": "on the guest Wi-Fi · median dwell {dwell} · {visits} visits",
        "connected_none": "no station list from the AP",
        "connected_coverage": "station list read in {share} of the opening hours: at least this many",
        "connected_heard": "station list last read {age} ago",
        "connected_partial": "≥ {n} (list read {share})",
        "band": "likely {range}",
        "band_low": "Likely from (calibrated)",
        "band_high": "Likely to",
        "visitors_low": "Visitors, likely from",
        "visitors_high": "Visitors, likely to",
        "connected_column": "Connected (exact)",
        "connected_present": "Connected, present (exact)",
        "operator_totals": "All malls together",
    },
    "zh-CN": {
        "title": "客流分析",
        "store_view": "门店",
        "mall_view": "商场",
        "operator_view": "全部商场",
        "range": "日期",
        "from": "从",
        "to": "到",
        "apply": "查看",
        "export_csv": "导出 CSV",
        "compare_note": "对比上周同日（{start} – {end}）",
        "compare_note_until": "对比上周同日（{start} – {end}，{end} 截至 {time}，与现在同一时刻：今天尚未结束）",
        "this_period": "本期",
        "last_week": "上周同日",
        "change": "变化",
        "metric": "指标",
        "passersby": "路过人数",
        "visitors": "进店人数",
        "capture_rate": "进店率",
        "median_dwell_s": "驻店时长（中位数）",
        "new_visitors": "新客",
        "repeat_visitors": "回头客",
        "wifi_logins": "Wi-Fi 登录",
        "new_members": "新会员",
        "staff_excluded": "已排除员工设备",
        "summary": "概览",
        "funnel": "转化漏斗",
        "step": "环节",
        "count": "人数",
        "conversion": "占上一环节",
        "heard": "经过（路过 + 进店）",
        "dwell": "驻店时长分布",
        "bucket": "区间",
        "loyalty": "新客与回头客（忠诚度）",
        "hourly": "分时客流",
        "hour": "时段",
        "summed": "（所选日期逐时合计）",
        "visitors_last_week": "上周同日进店",
        "days": "每日明细",
        "date": "日期",
        "stores": "门店对比",
        "store": "门店",
        "small_multiples": "各门店：本期与上周同日",
        "mall_totals": "商场合计（每位顾客每天计一次）",
        "transitions": "顾客跨店动线（前十）",
        "from_store": "从",
        "to_store": "到",
        "shoppers": "顾客数",
        "malls": "商场对比",
        "mall": "商场",
        "last_report": "探针最近上报",
        "never": "从未上报",
        "ago": "{age}前",
        "empty_never": "暂无数据：本店探针尚未上报任何数据。",
        "empty_range": "所选日期没有数据。探针最近一次上报在{age}前。",
        "stale": "探针最近一次上报在{age}前。",
        "loading": "加载中…",
        "logout": "退出",
        "sort_hint": "点击列标题排序",
        "first_time": "首次到店",
        "daily": "每日",
        "weekly": "每周",
        "monthly": "每月",
        "occasional": "偶尔",
        "min": "{n} 分钟",
        "s": "{n} 秒",
        "h": "{n} 小时",
        "d": "{n} 天",
        "forbidden": "您无权查看这些数据。",
        "no_data": "无数据",
        "view": "视图",
        "live_store": "当前在店人数",
        "live_mall": "商场当前人数",
        "live_band": "可能范围 {lo}–{hi}",
        "live_detail": "最近 {minutes} 分钟 · 停留满 {dwell}：{staying} · 路过：{nearby}",
        "live_heard": "探针 {age}前收到信号",
        "live_silent": "最近 {minutes} 分钟未收到信号",
        "live_connected": "当前连接访客 Wi-Fi：{n}（精确）",
        "connected": "已连接 Wi-Fi 的顾客（精确）",
        "connected_detail": "连接访客 Wi-Fi · 驻店时长中位数 {dwell} · 到访 {visits} 次",
        "connected_none": "未收到 AP 的连接设备列表",
        "connected_coverage": "营业时间内仅 {share} 收到连接设备列表：实际人数不少于此",
        "connected_heard": "连接设备列表最近一次收到在{age}前",
        "connected_partial": "≥ {n}（{share} 时段有列表）",
        "band": "可能范围 {range}",
        "band_low": "可能范围下限（校准）",
        "band_high": "可能范围上限",
        "visitors_low": "进店可能下限",
        "visitors_high": "进店可能上限",
        "connected_column": "已连接（精确）",
        "connected_present": "在店已连接（精确）",
        "operator_totals": "全部商场合计",
    },
}


def pick(explicit: str | None, accept_language: str | None) -> str:
    """The language: an explicit choice if known, else the best ``Accept-Language`` match, else zh-CN."""
    if explicit in LANGS:
        return str(explicit)
    if explicit and explicit.lower().startswith("en"):
        return "en"
    if accept_language:
        best: tuple[float, str] | None = None
        for part in accept_language.split(","):
            tag, _, q = part.strip().partition(";q=")
            try:
                weight = float(q) if q else 1.0
            except ValueError:
                continue
            tag = tag.strip().lower()
            lang = "zh-CN" if tag.startswith("zh") else "en" if tag.startswith("en") else None
            if lang and (best is None or weight > best[0]):
                best = (weight, lang)
        if best:
            return best[1]
    return DEFAULT


def t(lang: str, key: str, **kw: object) -> str:
    text = CATALOG.get(lang, CATALOG[DEFAULT]).get(key) or CATALOG["en"].get(key, key)
    return text.format(**kw) if kw else text


def integer(n: float | None) -> str:
    return "—" if n is None else f"{round(n):,}"


def percent(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def duration(lang: str, seconds: float | None) -> str:
    """A dwell or an age: seconds under a minute, minutes under two hours, hours under two days, then days."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return t(lang, "s", n=round(seconds))
    if seconds < 7200:
        return t(lang, "min", n=f"{seconds / 60:.1f}".removesuffix(".0"))
    if seconds < 2 * 86400:
        return t(lang, "h", n=f"{seconds / 3600:.1f}".removesuffix(".0"))
    return t(lang, "d", n=f"{seconds / 86400:.1f}".removesuffix(".0"))


def change(current: float | None, previous: float | None, *, ratio: bool = False) -> str:
    """Relative change of a count (+12.5%), or the difference of a ratio in percentage points (+2.1 pt)."""
    if current is None or previous is None:
        return "—"
    if ratio:
        return f"{(current - previous) * 100:+.1f} pt"
    if previous == 0:
        return "—"
    return f"{(current - previous) / previous * 100:+.1f}%"
