/* The built-in dashboard's page: fetches the view JSON of /api/v1/... and draws it.
 * Every number shown comes as text from the server (dashboards/builtin/views.py), the same text the CSV holds;
 * this script only lays it out, sorts tables and draws ECharts from the same series.
 * No data is null, never 0: a null figure shows as T.no_data ("无数据" / "no data"), a null point is a gap in its
 * chart, a chart without a single figure says "no data" instead of drawing zeros, and an empty table has a
 * "no data" line. */
(function () {
  "use strict";
  // a JSON block, not an inline script: the page's Content-Security-Policy runs no inline script
  var cfg = JSON.parse(document.getElementById("keliu-dashboard").textContent);
  var T = cfg.i18n;
  var charts = [];

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  function query() {
    var p = new URLSearchParams();
    var s = document.getElementById("start").value, e = document.getElementById("end").value;
    if (s) p.set("start", s);
    if (e) p.set("end", e);
    p.set("lang", cfg.lang);
    return p.toString();
  }

  function nav() {
    var sel = document.getElementById("nav");
    var opts = [];
    if (cfg.operator) opts.push(["/dashboard/operator", T.operator_view, cfg.kind === "operator"]);
    cfg.malls.forEach(function (m) {
      opts.push(["/dashboard/mall/" + encodeURIComponent(m.id), T.mall_view + " · " + m.name,
                 cfg.kind === "mall" && cfg.id === m.id]);
    });
    cfg.stores.forEach(function (s) {
      opts.push(["/dashboard/store/" + encodeURIComponent(s.id), T.store_view + " · " + s.name,
                 cfg.kind === "store" && cfg.id === s.id]);
    });
    opts.forEach(function (o) {
      var opt = el("option", {value: o[0], text: o[1]});
      if (o[2]) opt.selected = true;
      sel.appendChild(opt);
    });
    sel.addEventListener("change", function () { location.href = sel.value + "?" + query(); });
  }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  // does any series of the chart hold a figure (0 counts; null and absent do not)?
  function hasData(series) {
    return series.some(function (s) {
      return (s.data || []).some(function (d) {
        var v = d !== null && typeof d === "object" ? ("raw" in d ? d.raw : d.value) : d;
        return isNum(v);
      });
    });
  }

  function noData(v) { return v === null || v === undefined; }

  function chart(parent, title, option, cls) {
    var box = el("div", {"class": "chart " + (cls || "")}, [el("h3", {text: title})]);
    var area = el("div", {"class": "area"});
    box.appendChild(area);
    parent.appendChild(box);
    if (!hasData(option.series || [])) {
      box.classList.add("nodata");
      area.appendChild(el("p", {"class": "nodata-text", text: T.no_data}));
      return box;
    }
    if (window.echarts) {
      var c = window.echarts.init(area, null, {renderer: "canvas"});
      option.animation = false;
      c.setOption(option);
      charts.push(c);
    }
    return box;
  }

  function kpis(view) {
    var box = document.getElementById("kpis");
    box.textContent = "";
    view.kpis.forEach(function (k) {
      var attrs = {"class": "kpi", "data-key": k.key};
      if (k.basis) attrs["data-basis"] = k.basis;
      box.appendChild(el("div", attrs, [
        el("div", {"class": "label", text: k.label}),
        el("div", {"class": "value" + (noData(k.value) ? " nodata" : ""), text: noData(k.value) ? T.no_data : k.text}),
        // the calibrated band (analytics.bands) of an estimated figure; none for an exact one or without data
        k.band_text ? el("div", {"class": "band", text: k.band_text}) : null,
        el("div", {"class": "prev", text: T.last_week + ": " + (noData(k.previous) ? T.no_data : k.previous_text) +
                                          (noData(k.value) || noData(k.previous) ? "" : " (" + k.change_text + ")")})
      ]));
    });
  }

  // connected shoppers (已连接 Wi-Fi 的顾客): the AP's own stations, exact (basis connected_stations), a card beside
  // the estimated figures and never added to them; store, mall (a station once across its stores) and operator
  function connected(view) {
    var c = view.connected;
    if (!c) return;
    var none = noData(c.value);
    document.getElementById("kpis").appendChild(el("div", {"class": "kpi connected", "data-key": "connected",
                                                            "data-basis": c.basis, id: "connected"}, [
      el("div", {"class": "label", text: c.label}),
      el("div", {"class": "value" + (none ? " nodata" : ""), id: "connected-value", text: none ? T.no_data : c.text}),
      el("div", {"class": "prev", id: "connected-detail", text: c.detail}),
      // the AP's station list: read in less than all the opening hours (the figure a lower bound), last read when
      c.health_text ? el("div", {"class": "prev", id: "connected-health", text: c.health_text}) : null,
      el("div", {"class": "prev", text: T.last_week + ": " + (noData(c.previous) ? T.no_data : c.previous_text) +
                                        (none || noData(c.previous) ? "" : " (" + c.change_text + ")")})
    ]));
  }

  // live occupancy (当前在店人数): drawn from the view, then asked for again every cfg.live_poll_s seconds
  function live(v) {
    var box = document.getElementById("live");
    if (!v) { box.hidden = true; return; }
    box.hidden = false;
    box.textContent = "";
    box.appendChild(el("div", {"class": "label", text: v.label}));
    box.appendChild(el("div", {"class": "value", id: "live-value", text: v.text}));
    box.appendChild(el("div", {"class": "band", id: "live-band", text: v.band_text}));
    box.appendChild(el("div", {"class": "detail", id: "live-detail", text: v.detail + " · " + v.heard}));
    box.appendChild(el("div", {"class": "detail", id: "live-connected", text: v.connected_text}));
    if (v.stores && v.stores.length) {
      box.appendChild(el("ul", {"class": "live-stores"}, v.stores.map(function (s) {
        return el("li", {"data-store": s.id}, [el("span", {text: s.name}), el("b", {text: s.text})]);
      })));
    }
    box.setAttribute("data-as-of", String(v.as_of));
  }

  function pollLive() {
    if (!cfg.live) return;
    fetch(cfg.live + "?lang=" + encodeURIComponent(cfg.lang), {credentials: "same-origin",
                                                               headers: {Accept: "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) { if (v) live(v); })
      .catch(function () { /* the next poll tries again; the last figure stays with its time */ });
  }

  function table(tab) {
    var thead = el("tr", {}, tab.columns.map(function (c, i) {
      var th = el("th", {text: c, "data-col": String(i)});
      return th;
    }));
    var tbody = el("tbody");
    function fill(rows) {
      tbody.textContent = "";
      if (!rows.length) {
        tbody.appendChild(el("tr", {"class": "nodata"}, [
          el("td", {colspan: String(tab.columns.length), text: T.no_data})]));
        return;
      }
      rows.forEach(function (r, n) {
        tbody.appendChild(el("tr", {}, r.map(function (c, i) {
          // a figure without data: its value is null (a text cell's value is its text); the funnel's first step
          // has no step before it, so its share is not applicable rather than missing
          var empty = noData(c.value) && !(tab.id === "funnel" && n === 0 && i === 2);
          return el("td", {text: empty ? T.no_data : c.text, "data-label": tab.columns[i],
                           "class": empty ? "nodata" : ""});
        })));
      });
    }
    var rows = tab.rows.slice();
    fill(rows);
    if (tab.sortable) {
      var dir = {};
      Array.prototype.forEach.call(thead.children, function (th, i) {
        th.classList.add("sortable");
        th.title = T.sort_hint;
        th.addEventListener("click", function () {
          dir[i] = dir[i] === "desc" ? "asc" : "desc";
          rows.sort(function (a, b) {
            var x = a[i].value, y = b[i].value;
            if (x === null) return 1;
            if (y === null) return -1;
            var r = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
            return dir[i] === "desc" ? -r : r;
          });
          fill(rows);
        });
      });
    }
    // more than four columns do not fit a phone: there each row becomes a card (dashboard.css, .stack)
    return el("div", {"class": "table", "id": "table-" + tab.id}, [
      el("h3", {text: tab.title}),
      el("table", {"class": tab.columns.length > 4 ? "stack" : ""}, [el("thead", {}, [thead]), tbody])]);
  }

  var BLUE = "#1f6feb", GREY = "#9aa4b2", ORANGE = "#f08c2e", GREEN = "#2da44e";

  function storeCharts(view, box) {
    var c = view.charts;
    chart(box, c.hourly.title, {
      tooltip: {trigger: "axis"}, legend: {bottom: 0},
      xAxis: {type: "category", data: c.hourly.hours}, yAxis: {type: "value"},
      series: [
        {name: T.passersby, type: "bar", data: c.hourly.passersby, itemStyle: {color: GREY}},
        {name: T.visitors, type: "bar", data: c.hourly.visitors, itemStyle: {color: BLUE}},
        {name: T.visitors_last_week, type: "line", data: c.hourly.visitors_last_week, itemStyle: {color: ORANGE}},
        // present per hour, not arrivals: a dashed line of its own, never stacked on the bars
        {name: T.connected_present, type: "line", data: c.hourly.connected || [], itemStyle: {color: GREEN},
         lineStyle: {type: "dashed"}}
      ]
    }, "wide");
    chart(box, T.funnel, {
      tooltip: {trigger: "item"}, legend: {bottom: 0, type: "scroll"},
      series: [{type: "funnel", sort: "none", minSize: "8%", bottom: 40, top: 10,
                label: {show: true, position: "inside", formatter: function (p) {
                  return isNum(p.value) ? String(p.value) : T.no_data; }},
                data: c.funnel}]
    });
    chart(box, T.dwell, {
      tooltip: {trigger: "axis"}, legend: {bottom: 0},
      xAxis: {type: "category", data: c.dwell.labels}, yAxis: {type: "value"},
      series: [{name: T.this_period, type: "bar", data: c.dwell.current, itemStyle: {color: BLUE}},
               {name: T.last_week, type: "bar", data: c.dwell.previous, itemStyle: {color: GREY}}]
    });
    chart(box, T.loyalty, {
      tooltip: {trigger: "item"}, legend: {bottom: 0, type: "scroll"},
      series: [{type: "pie", radius: ["32%", "58%"], center: ["50%", "44%"], avoidLabelOverlap: true,
                // a slice of 0 has no label: its label would sit on its neighbour's and over the legend
                data: c.loyalty.labels.map(function (l, i) {
                  var v = c.loyalty.values[i], shown = isNum(v) && v > 0;
                  return {name: l, value: isNum(v) ? v : null, label: {show: shown}, labelLine: {show: shown}};
                })}]
    });
    if (c.days.dates.length > 1) {
      chart(box, T.days, {
        tooltip: {trigger: "axis"}, legend: {bottom: 0},
        xAxis: {type: "category", data: c.days.dates}, yAxis: {type: "value"},
        series: [{name: T.passersby, type: "line", data: c.days.passersby, itemStyle: {color: GREY}},
                 {name: T.visitors, type: "line", data: c.days.visitors, itemStyle: {color: BLUE}}]
      }, "wide");
    }
  }

  function mallCharts(view, box) {
    var grid = el("div", {"class": "multiples"});
    box.appendChild(el("h3", {text: T.small_multiples, "class": "full"}));
    box.appendChild(grid);
    var max = 1;
    view.charts.multiples.forEach(function (m) {
      m.current.concat(m.previous).forEach(function (v) { if (isNum(v) && v > max) max = v; });
    });
    // passers-by (hundreds) and members (a few) on one chart: a log scale, the same for every store so that the
    // small multiples compare by eye; each bar is labelled with its figure. A 0 has no bar on a log scale (its
    // label says 0); no data is no bar and "no data" in the tooltip.
    // bars on a log axis grow from 1: each figure is drawn at twice its value (the axis has no labels, the bar
    // its own figure), so that a 1 still shows a bar
    function logBar(v) {
      return {value: isNum(v) && v > 0 ? 2 * v : null, raw: isNum(v) ? v : null};
    }
    var label = {show: true, position: "top", fontSize: 10, formatter: function (p) {
      return isNum(p.data.raw) ? String(p.data.raw) : ""; }};
    view.charts.multiples.forEach(function (m) {
      chart(grid, m.name, {
        grid: {left: 12, right: 8, top: 18, bottom: 40},
        tooltip: {trigger: "axis", formatter: function (ps) {
          return ps.map(function (p) {
            return p.seriesName + " · " + p.name + ": " + (isNum(p.data.raw) ? p.data.raw : T.no_data);
          }).join("<br>");
        }},
        xAxis: {type: "category", data: m.labels, axisLabel: {fontSize: 10, interval: 0, rotate: 20}},
        yAxis: {type: "log", logBase: 10, min: 1, max: Math.pow(10, Math.ceil(Math.log10(max * 4))),
                axisLabel: {show: false}},
        series: [{name: T.this_period, type: "bar", data: m.current.map(logBar), itemStyle: {color: BLUE}, label: label},
                 {name: T.last_week, type: "bar", data: m.previous.map(logBar), itemStyle: {color: GREY}}]
      }, "small");
    });
  }

  function operatorCharts(view, box) {
    var c = view.charts.malls;
    chart(box, T.malls, {
      tooltip: {trigger: "axis"}, legend: {bottom: 0},
      xAxis: {type: "category", data: c.names}, yAxis: {type: "value"},
      series: [{name: T.passersby, type: "bar", data: c.passersby, itemStyle: {color: GREY}},
               {name: T.visitors, type: "bar", data: c.visitors, itemStyle: {color: BLUE}}]
    }, "wide");
  }

  function render(view) {
    charts.forEach(function (c) { c.dispose(); });
    charts = [];
    document.getElementById("title").textContent = view.title;
    document.getElementById("compare").textContent =
      view.range.start + " – " + view.range.end + " · " + view.compare_note;
    document.getElementById("start").value = view.range.start;
    document.getElementById("end").value = view.range.end;
    var status = document.getElementById("status");
    if (view.status) {
      status.hidden = false;
      status.textContent = view.status.message;
      status.className = "banner" + (view.status.empty ? " empty" : "");
    } else {
      status.hidden = true;
    }
    live(view.live);
    kpis(view);
    connected(view);
    var box = document.getElementById("charts");
    box.textContent = "";
    var empty = view.status && view.status.empty;
    if (!empty) {
      if (view.kind === "store") storeCharts(view, box);
      if (view.kind === "mall") mallCharts(view, box);
      if (view.kind === "operator") operatorCharts(view, box);
    }
    var tables = document.getElementById("tables");
    tables.textContent = "";
    view.tables.forEach(function (tab) { tables.appendChild(table(tab)); });
    document.getElementById("csv").href = cfg.api + ".csv?" + query();
    document.body.setAttribute("data-ready", "1");
  }

  function load() {
    document.body.removeAttribute("data-ready");
    fetch(cfg.api + "?" + query(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.message || r.status);
          return body;
        });
      })
      .then(render)
      .catch(function (err) {
        var status = document.getElementById("status");
        status.hidden = false;
        status.className = "banner error";
        status.textContent = String(err.message || err);
        document.body.setAttribute("data-ready", "error");
      });
  }

  document.getElementById("start").value = cfg.start || "";
  document.getElementById("end").value = cfg.end || "";
  document.getElementById("range").addEventListener("submit", function (ev) {
    ev.preventDefault();
    history.replaceState(null, "", location.pathname + "?" + query());
    load();
  });
  var other = cfg.lang === "zh-CN" ? "en" : "zh-CN";
  document.getElementById("lang").addEventListener("click", function (ev) {
    ev.preventDefault();
    var p = new URLSearchParams(query());
    p.set("lang", other);
    location.href = location.pathname + "?" + p.toString();
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  nav();
  load();
  if (cfg.live) window.setInterval(pollLive, 1000 * (cfg.live_poll_s || 20));
})();
