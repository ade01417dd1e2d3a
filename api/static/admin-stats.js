/*
 * kefu manager's console: 数据看板, the shop's figures (GET /v1/admin/stats) over whole days in the
 * shop's time zone: the headline rates against the previous period of the same length, a daily chart
 * (uPlot, served by kefu), handoff reasons, the most asked and the least helpful entries, agents'
 * figures, and a CSV of it all.
 */
(function (K) {
  "use strict";

  var $ = K.$, el = K.el;
  var DAY = 86400000;
  var REASONS = K.REASONS;
  var current = null;   // the figures shown
  var previous = null;  // those of the period before
  var chart = null;

  // ---- dates (the server counts in the shop's time zone; the inputs are plain days) ---------
  function iso(d) { return d.toISOString().slice(0, 10); }
  function addDays(day, n) { return iso(new Date(Date.parse(day + "T00:00:00Z") + n * DAY)); }
  function span(from, to) { return Math.round((Date.parse(to) - Date.parse(from)) / DAY) + 1; }

  // The last n days up to the shop's today (the server's default range ends today in its time zone).
  function lastDays(n) {
    var to = $("stats-to").value;
    if (!to) return load(true);  // not read yet: the server's week first
    $("stats-from").value = addDays(to, 1 - n);
    load();
  }

  // ---- reading ------------------------------------------------------------------------------
  function load(serverDefault) {
    var from = $("stats-from").value, to = $("stats-to").value;
    var first = serverDefault ? K.api("/v1/admin/stats") : null;  // no dates yet: the server's last 7 days
    if (!first && (!from || !to)) return;
    if (!first && from > to) return K.say("stats-error", "开始日期不能晚于结束日期。");
    K.say("stats-error", "");
    $("stats-loading").hidden = false;
    (first || K.api("/v1/admin/stats?from=" + from + "&to=" + to)).then(function (f) {
      current = f;
      $("stats-from").value = f.from;
      $("stats-to").value = f.to;
      var n = span(f.from, f.to);
      return K.api("/v1/admin/stats?from=" + addDays(f.from, -n) + "&to=" + addDays(f.from, -1))
        .catch(function () { return null; });  // a range at the very start of the history
    }).then(function (before) {
      previous = before;
      render();
    }).catch(function (err) {
      K.say("stats-error", K.describe(err));
    }).then(function () { $("stats-loading").hidden = true; });
  }

  // ---- showing ------------------------------------------------------------------------------
  function share(part, whole) { return whole ? part / whole : null; }

  // The change against the previous period: points for a rate, per cent for a count.
  function change(now, before, rate) {
    if (now == null || before == null) return "";
    if (rate) {
      var pts = (now - before) * 100;
      return "（" + (pts >= 0 ? "+" : "") + pts.toFixed(1) + " 个百分点）";
    }
    if (!before) return now ? "（上期为 0）" : "（持平）";
    var p = (now - before) / before * 100;
    return "（" + (p >= 0 ? "+" : "") + p.toFixed(0) + "%）";
  }

  function card(label, value, delta, note) {
    var li = el("li", { class: "card" });
    li.appendChild(el("span", { class: "card-label" }, label));
    li.appendChild(el("strong", { class: "card-value" }, value));
    li.appendChild(el("span", { class: "card-delta" }, delta));
    if (note) li.appendChild(el("span", { class: "card-note" }, note));
    return li;
  }

  function headline(f) {
    var p = previous || {};
    var rated = sumOf(f.ratings);
    var handoffRate = share(f.handed_off, f.conversations);
    return [
      card("接待量", String(f.conversations), change(f.conversations, p.conversations, false)),
      card("自助解决率", K.pct(f.containment_rate, 1), change(f.containment_rate, p.containment_rate, true),
           "没有转人工的会话"),
      card("转人工率", K.pct(handoffRate, 1), change(handoffRate, share(p.handed_off, p.conversations), true),
           f.handed_off + " 个会话"),
      card("无答案率", K.pct(f.unanswered_rate, 1), change(f.unanswered_rate, p.unanswered_rate, true),
           f.unanswered_turns + " / " + f.bot_turns + " 次回复"),
      card("满意度", K.pct(f.satisfaction_rate, 1), change(f.satisfaction_rate, p.satisfaction_rate, true),
           rated + " 个评价"),
      card("询单转化率", K.pct(f.conversion_rate, 1), change(f.conversion_rate, p.conversion_rate, true),
           f.orders + " 单 · ¥" + f.order_amount.toFixed(2)),
      card("排队时长中位数", seconds(f.wait_seconds_p50), change(f.wait_seconds_p50, p.wait_seconds_p50, false))
    ];
  }

  function sumOf(counts) {
    return Object.keys(counts || {}).reduce(function (n, k) { return n + counts[k]; }, 0);
  }

  function seconds(s) {
    if (s == null) return "—";
    return s < 60 ? s.toFixed(0) + " 秒" : (s / 60).toFixed(1) + " 分钟";
  }

  function table(id, head, rows) {
    var t = $(id);
    t.textContent = "";
    var thead = el("thead"), tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th", { scope: "col" }, h)); });
    thead.appendChild(tr);
    var body = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c) { row.appendChild(el("td", {}, c == null ? "—" : String(c))); });
      body.appendChild(row);
    });
    t.appendChild(thead);
    t.appendChild(body);
  }

  function render() {
    var f = current;
    $("stats-body").hidden = false;
    var cards = $("stats-cards");
    cards.textContent = "";
    headline(f).forEach(function (c) { cards.appendChild(c); });
    drawChart(f.days);
    table("stats-days", ["日期", "接待量", "转人工", "自助解决率"], f.days.map(function (d) {
      return [d.date, d.conversations, d.handed_off, K.pct(d.containment_rate, 1)];
    }));
    table("stats-reasons", ["原因", "次数"], Object.keys(f.handoff_reasons).map(function (r) {
      return [REASONS[r] || r, f.handoff_reasons[r]];
    }));
    table("stats-top", ["问题", "回答次数", "有帮助", "没帮助"], f.intents.slice(0, 10).map(function (i) {
      return [K.titleOf(i.intent), i.answered, i.helpful, i.unhelpful];
    }));
    var unhelpful = f.intents.filter(function (i) { return i.unhelpful > 0; }).sort(function (a, b) {
      return b.unhelpful / (b.helpful + b.unhelpful) - a.unhelpful / (a.helpful + a.unhelpful) || b.unhelpful - a.unhelpful;
    }).slice(0, 10);
    $("stats-unhelpful-empty").hidden = unhelpful.length > 0;
    table("stats-unhelpful", ["问题", "没帮助", "没帮助占比"], unhelpful.map(function (i) {
      return [K.titleOf(i.intent), i.unhelpful, K.pct(i.unhelpful / (i.helpful + i.unhelpful), 0)];
    }));
    $("stats-agents-empty").hidden = f.agents.length > 0;
    table("stats-agents", ["客服", "接待", "首次响应（中位数）", "3分钟回复率", "平均响应"], f.agents.map(function (a) {
      return [a.agent, a.handled, seconds(a.first_reply_seconds_p50), K.pct(a.within_180s_rate, 1),
              seconds(a.mean_reply_seconds)];
    }));
  }

  function drawChart(days) {
    var box = $("stats-chart");
    if (chart) { chart.destroy(); chart = null; }
    box.textContent = "";
    box.setAttribute("aria-label", "每日接待量与转人工：" + days.map(function (d) {
      return d.date + " 接待 " + d.conversations + "，转人工 " + d.handed_off;
    }).join("；"));
    if (!window.uPlot) return;
    var xs = days.map(function (d) { return Date.parse(d.date + "T00:00:00Z") / 1000; });
    var width = Math.max(280, box.clientWidth || 600);
    chart = new window.uPlot({
      width: width, height: 240, tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      series: [
        { label: "日期", value: "{YYYY}-{MM}-{DD}" },
        { label: "接待量", stroke: "#0958d9", width: 2, points: { show: days.length <= 31 } },
        { label: "转人工", stroke: "#d4380d", width: 2, dash: [6, 4], points: { show: days.length <= 31 } }
      ],
      // whole days only on the time axis (one tick a day, a week or a month), whole numbers on the other
      axes: [{ values: "{M}/{D}", stroke: "#4e5969", incrs: [DAY / 1000, 7 * DAY / 1000, 30 * DAY / 1000] },
             { stroke: "#4e5969", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }],
      scales: { x: { time: true } }
    }, [xs, days.map(function (d) { return d.conversations; }), days.map(function (d) { return d.handed_off; })], box);
  }

  // ---- CSV (with a BOM, so that spreadsheet programs read the Chinese) -------------------------
  function csvCell(v) {
    var s = v == null ? "" : String(v);
    if (/^[=+\-@]/.test(s)) s = "'" + s;  // never a formula in a spreadsheet
    return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function csv(f) {
    var rows = [["指标", "数值"],
      ["开始日期", f.from], ["结束日期", f.to], ["时区", f.timezone], ["接待量", f.conversations],
      ["转人工会话", f.handed_off], ["自助解决率", f.containment_rate], ["机器人回复", f.bot_turns],
      ["无答案回复", f.unanswered_turns], ["无答案率", f.unanswered_rate], ["有帮助", f.feedback.helpful],
      ["没帮助", f.feedback.unhelpful], ["满意度", f.satisfaction_rate], ["订单数", f.orders],
      ["订单金额", f.order_amount], ["询单转化率", f.conversion_rate], ["排队时长中位数（秒）", f.wait_seconds_p50],
      [], ["日期", "接待量", "转人工", "自助解决率"]];
    f.days.forEach(function (d) { rows.push([d.date, d.conversations, d.handed_off, d.containment_rate]); });
    rows.push([], ["问题", "回答次数", "有帮助", "没帮助"]);
    f.intents.forEach(function (i) { rows.push([K.titleOf(i.intent), i.answered, i.helpful, i.unhelpful]); });
    rows.push([], ["客服", "接待", "首次响应中位数（秒）", "3分钟回复率", "平均响应（秒）"]);
    f.agents.forEach(function (a) {
      rows.push([a.agent, a.handled, a.first_reply_seconds_p50, a.within_180s_rate, a.mean_reply_seconds]);
    });
    return "\ufeff" + rows.map(function (r) { return r.map(csvCell).join(","); }).join("\r\n") + "\r\n";
  }

  function download() {
    if (!current) return;
    var url = URL.createObjectURL(new Blob([csv(current)], { type: "text/csv;charset=utf-8" }));
    var a = el("a", { href: url, download: "kefu-stats-" + current.from + "-" + current.to + ".csv" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  K.stats = {
    init: function () {
      $("stats-form").addEventListener("submit", function (e) { e.preventDefault(); load(); });
      Array.prototype.forEach.call(document.querySelectorAll("#stats-form [data-days]"), function (b) {
        b.addEventListener("click", function () { lastDays(Number(b.dataset.days)); });
      });
      $("stats-csv").addEventListener("click", download);
      window.addEventListener("resize", function () { if (current && !$("panel-stats").hidden) drawChart(current.days); });
    },
    show: function () {
      load(!$("stats-to").value);
    }
  };
})(window.kefuAdmin);
