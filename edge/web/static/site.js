// The live page: one EventSource on /api/v1/live; every message carries the whole
// state (status, connectors, recent events), so a missed one costs nothing.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var amps = function (da) { return da === null || da === undefined ? "–" : (da / 10).toFixed(1) + " A"; };
  var time = function (s) { return s ? new Date(s * 1000).toLocaleTimeString() : ""; };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // Positions through the CSSOM: the page's CSP allows no inline style attributes.
  function seg(cls, left, width) {
    var s = el("span", { "class": cls });
    s.style.left = left;
    if (width !== null) s.style.width = width;
    return s;
  }

  function badge(id, text, cls) { var b = $(id); b.textContent = text; b.className = "badge " + (cls || ""); }

  function phases(status) {
    var box = $("phases");
    box.textContent = "";
    status.phases.forEach(function (p) {
      var scale = Math.max(p.limit_da, p.grid_da || 0) * 1.1 || 1;
      var pct = function (da) { return Math.max(0, Math.min(100, 100 * da / scale)) + "%"; };
      var row = el("div", { "class": "phase" + (p.overshoot ? " over" : ""), "data-phase": p.phase });
      row.appendChild(el("strong", {}, p.phase));
      var bar = el("div", { "class": "bar" });
      var b = p.building_da || 0, e = p.ev_da || 0, used = p.grid_da === null ? b + e : p.grid_da;
      bar.appendChild(seg("building", "0%", pct(b)));
      bar.appendChild(seg("ev", pct(b), pct(e)));
      var free = Math.max(0, p.limit_da - p.margin_da - used);
      bar.appendChild(seg("free", pct(used), pct(free)));
      bar.appendChild(seg("limit", pct(p.limit_da), null));
      bar.appendChild(el("span", { "class": "text" }, "building " + amps(p.building_da) + " · cars " + amps(p.ev_da) +
        " · headroom " + amps(p.headroom_da) + " of " + amps(p.limit_da) + (p.overshoot ? " · OVER LIMIT" : "")));
      row.appendChild(bar);
      box.appendChild(row);
    });
    var cap = status.external_limit;
    $("cap").textContent = cap ? "External cap " + amps(cap.max_da) + " per phase until " + time(cap.expires_s) : "";
  }

  function connectors(list) {
    var body = $("connectors").tBodies[0];
    body.textContent = "";
    list.forEach(function (c) {
      var r = c.reason || {};
      var tr = el("tr", { "data-key": c.station + "/" + c.connector,
                          "class": r.paused ? "paused" : (r.code === "limited" || r.code === "failsafe" ||
                                                          r.code === "external_limit" ? "limited" : "") });
      var cell = function (label, text, cls) {
        var td = el("td", { "data-label": label, "class": cls || "" }, text); tr.appendChild(td); return td;
      };
      cell("Connector", c.station + "/" + c.connector + " (" + c.wiring + ")");
      cell("State", (c.connected ? "" : "offline · ") + (c.status || "–"));
      cell("Card", c.token || "–");
      var g = cell("Group", c.group_name || c.group_id || "–");
      if (c.prioritised) g.appendChild(el("span", { "class": "prio", title: "prioritised" }, " ★"));
      cell("Given", amps(c.allocated_da) + (c.target_da !== c.allocated_da ? " → " + amps(c.target_da) : ""), "num");
      cell("Drawn", c.drawn_da ? c.drawn_da.map(function (d) { return (d / 10).toFixed(1); }).join("/") + " A" : "–", "num");
      cell("Phases", c.phases, "num");
      cell("Why", r.text || "", "why");
      body.appendChild(tr);
    });
  }

  function events(list) {
    var ol = $("events");
    ol.textContent = "";
    list.forEach(function (e) {
      var parts = [time(e.at_s), e.kind.replace(/_/g, " ")];
      ["station", "connector", "status", "mode", "reason", "energy_wh", "stop_reason", "connected", "online", "max_da"].forEach(function (k) {
        if (e[k] !== undefined && e[k] !== null) parts.push(k === "energy_wh" ? e[k] + " Wh" : k + " " + e[k]);
      });
      ol.appendChild(el("li", {}, parts.join(" · ")));
    });
  }

  function show(state) {
    var s = state.status;
    $("site").textContent = "Site " + s.site_id;
    var a = s.allocation;
    badge("mode", a.mode === "normal" ? "normal" : (a.mode || "starting") + (a.reason ? " (" + a.reason + ")" : ""),
          a.mode === "normal" ? "ok" : "bad");
    badge("cloud", s.cloud.configured ? (s.cloud.online ? "cloud online" : "cloud OFFLINE") : "no cloud",
          s.cloud.online ? "ok" : (s.cloud.configured ? "bad" : ""));
    badge("outbox", "outbox " + s.outbox.pending, s.outbox.pending > 100 ? "off" : "");
    phases(s);
    connectors(state.connectors);
    events(state.events);
    $("updated").textContent = "updated " + time(s.now_s) + " · step " + s.cycles;
    document.body.setAttribute("data-cycles", String(s.cycles));
  }

  var source = new EventSource("/api/v1/live");
  source.addEventListener("state", function (msg) {
    badge("link", "live", "ok");
    show(JSON.parse(msg.data));
  });
  source.onerror = function () { badge("link", "reconnecting…", "off"); };
}());
