/* The built-in dashboard's page: fetches the view JSON of /api/v1/... and draws it.
 * Every number shown comes as text from the server (dashboards/builtin/views.py), the same text the CSV holds;
 * this script only lays it out, sorts tables and draws ECharts from the same series. */
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

  function chart(parent, title, option, cls) {
    var box = el("div", {"class": "chart " + (cls || "")}, [el("h3", {text: title})]);
    var area = el("div", {"class": "area"});
    box.appendChild(area);
    parent.appendChild(box);
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
      box.appendChild(el("div", {"class": "kpi", "data-key": k.key}, [
        el("div", {"class": "label", text: k.label}),
        el("div", {"class": "value", text: k.text}),
        el("div", {"class": "prev", text: T.last_week + ": " + k.previous_text + " (" + k.change_text + ")"})
      ]));
    });
  }

  function table(tab) {
    var thead = el("tr", {}, tab.columns.map(function (c, i) {
      var th = el("th", {text: c, "data-col": String(i)});
      return th;
    }));
    var tbody = el("tbody");
    function fill(rows) {
      tbody.textContent = "";
      rows.forEach(function (r) {
        tbody.appendChild(el("tr", {}, r.map(function (c) { return el("td", {text: c.text}); })));
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
    return el("div", {"class": "table", "id": "table-" + tab.id}, [
      el("h3", {text: tab.title}), el("table", {}, [el("thead", {}, [thead]), tbody])]);
  }

  var BLUE = "#1f6feb", GREY = "#9aa4b2", ORANGE = "#f08c2e";

  function storeCharts(view, box) {
    var c = view.charts;
    chart(box, c.hourly.title, {
      tooltip: {trigger: "axis"}, legend: {bottom: 0},
      xAxis: {type: "category", data: c.hourly.hours}, yAxis: {type: "value"},
      series: [
        {name: T.passersby, type: "bar", data: c.hourly.passersby, itemStyle: {color: GREY}},
        {name: T.visitors, type: "bar", data: c.hourly.visitors, itemStyle: {color: BLUE}},
        {name: T.visitors_last_week, type: "line", data: c.hourly.visitors_last_week, itemStyle: {color: ORANGE}}
      ]
    }, "wide");
    chart(box, T.funnel, {
      tooltip: {trigger: "item"}, legend: {bottom: 0},
      series: [{type: "funnel", sort: "none", minSize: "8%", bottom: 40, top: 10,
                label: {show: true, position: "inside", formatter: "{c}"}, data: c.funnel}]
    });
    chart(box, T.dwell, {
      tooltip: {trigger: "axis"}, legend: {bottom: 0},
      xAxis: {type: "category", data: c.dwell.labels}, yAxis: {type: "value"},
      series: [{name: T.this_period, type: "bar", data: c.dwell.current, itemStyle: {color: BLUE}},
               {name: T.last_week, type: "bar", data: c.dwell.previous, itemStyle: {color: GREY}}]
    });
    chart(box, T.loyalty, {
      tooltip: {trigger: "item"}, legend: {bottom: 0},
      series: [{type: "pie", radius: ["35%", "65%"],
                data: c.loyalty.labels.map(function (l, i) { return {name: l, value: c.loyalty.values[i]}; })}]
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
    var max = 0;
    view.charts.multiples.forEach(function (m) {
      m.current.concat(m.previous).forEach(function (v) { if (v > max) max = v; });
    });
    view.charts.multiples.forEach(function (m) {
      chart(grid, m.name, {
        grid: {left: 40, right: 8, top: 10, bottom: 40},
        tooltip: {trigger: "axis"},
        xAxis: {type: "category", data: m.labels, axisLabel: {fontSize: 10, interval: 0, rotate: 20}},
        yAxis: {type: "value", max: max || null},  // one scale for all: small multiples compare by eye
        series: [{name: T.this_period, type: "bar", data: m.current, itemStyle: {color: BLUE}},
                 {name: T.last_week, type: "bar", data: m.previous, itemStyle: {color: GREY}}]
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
    kpis(view);
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
})();
