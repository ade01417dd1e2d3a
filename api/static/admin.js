/*
 * kefu manager's console, the shared part: talking to the server (errors said in Chinese), formats,
 * the confirmation dialog, tabs, signing in and out. Each tab has its own file (admin-review.js,
 * admin-kb.js, admin-shop.js, admin-train.js, admin-report.js, admin-stats.js), which registers itself on
 * window.kefuAdmin; this file starts them once the page is read. Every text from a shopper or a
 * manager is rendered with textContent, never innerHTML.
 */
(function () {
  "use strict";

  var TOKEN_KEY = "kefu.adminToken";
  var TABS = { review: "tab-review", kb: "tab-kb", try: "tab-try", train: "tab-train", stats: "tab-stats" };

  var K = window.kefuAdmin = {
    // Why a conversation went to a person, as the shop says it (hit testing, the figures).
    REASONS: {
      requested: "顾客要求人工", complaint: "投诉", problem: "商品问题", low_confidence: "机器人没把握",
      repeated_fallback: "多次没听懂", out_of_scope: "超出服务范围", reception: "人工优先接待"
    },
    token: null,
    titles: {},      // entry id -> title, from every list of entries read
    shop: null,      // the shop's facts: {values, fields, version}
    model: null,     // GET /v1/admin/model: the model in service
    run: null,       // the latest training run
    tabs: null       // the main tablist
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    if (text != null) node.textContent = text;
    return node;
  }

  function store(key, value) {
    try {
      if (value == null) sessionStorage.removeItem(key); else sessionStorage.setItem(key, value);
    } catch (e) { /* storage disabled: sign in again after a reload */ }
  }

  // ---- talking to the server -------------------------------------------------------------
  function api(path, options) {
    options = options || {};
    var init = { method: options.method || "GET",
                 headers: { "Accept": "application/json", "Authorization": "Bearer " + (options.token || K.token) } };
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var err = new Error(body.message || ("HTTP " + r.status));
          err.status = r.status;
          err.code = body.error;
          if ((r.status === 401 || r.status === 403) && !options.token) signOut("登录已失效或令牌不正确，请重新输入令牌");
          throw err;
        }
        return body;
      });
    }, function () {
      var err = new Error("network");
      err.network = true;
      throw err;
    });
  }

  function titleOf(name) { return K.titles[name] || name; }

  // The server's messages are English; the common ones are said again in Chinese, the rest quoted.
  var KNOWN = [
    [/placeholder '?([^' ]+?)'? is not in shop\.yml/, function (m, answer) {
      return "回答里的占位符 " + placeholder(answer, m[1]) + " 在店铺信息里没有，请改成店铺信息里有的项。"; }],
    [/every entry needs at least (\d+) examples; (\S+) has fewer/, function (m) {
      return "每个问题至少要有 " + m[1] + " 句例句，「" + titleOf(m[2]) + "」（" + m[2] + "）不够，请先在知识库里补充。"; }],
    [/(\S+) already exists/, function (m) {
      return "问题编号 " + m[1] + " 已经存在，请换一个编号，或在知识库里直接修改它。"; }],
    [/must look like family\.name|intent: String should match pattern/, function () {
      return "问题编号的格式不对：要用小写英文，写成「分类.名称」，如 product.authentic。"; }],
    [/an entry needs at least one example/, function () { return "至少要有一句顾客的问法（例句）。"; }],
    [/(title|answer) is empty|String should have at least 1 character/, function () { return "标题和回答都不能为空。"; }],
    [/(\S+) would be left without examples/, function (m) {
      return "「" + titleOf(m[1]) + "」的例句会被全部拿走，请至少给它留一句。"; }],
    [/a training run is already going/, function () { return "已经有一个训练在进行中，请等它结束。"; }],
    [/training run stopped unexpectedly/, function () {
      return "训练进程意外退出了（可能是服务器重启或内存不足），请再试一次。"; }],
    [/another change to the knowledge base is being saved/, function () { return "别人正在保存知识库，请稍等几秒再试。"; }],
    [/cannot write the data folder|cannot lock the data folder/, function () {
      return "服务器无法写入知识库文件夹（权限或磁盘空间问题），什么都没有改，请联系技术人员。"; }],
    [/([^\s\/]+\.yml): not valid YAML/, function (m) {
      return "知识库文件 " + m[1] + " 的格式有错误，读不出来，请先改好这个文件。"; }],
    [/has no previous version to roll back to/, function () { return "没有更早的模型可以回滚。"; }],
    [/is worse than .* on the held-out set/, function () { return "新模型在测试集上不如正在使用的模型。"; }]
  ];

  // The placeholder of `answer` the server names by its last part ({shipping.nowhere}: 'nowhere').
  function placeholder(answer, name) {
    var all = (answer || "").match(/\{[^{}]*\}/g) || [];
    var named = all.filter(function (p) { return p === "{" + name + "}" || p.slice(-name.length - 2) === "." + name + "}"; });
    return named[0] || "{" + name + "}";
  }

  // What the server said, in Chinese, if it is one of the common messages; `answer`: the template sent.
  function known(message, answer) {
    for (var i = 0; i < KNOWN.length; i += 1) {
      var m = KNOWN[i][0].exec(message || "");
      if (m) return KNOWN[i][1](m, answer);
    }
    return null;
  }

  function describe(err, answer) {
    if (err.network) return "无法连接服务器，请检查网络后重试。";
    var s = err.status;
    if (s === 401 || s === 403) return "令牌无效，请重新登录。";
    var said = known(err.message, answer);
    if (said) return said;
    var what = s === 404 ? "找不到要操作的内容" : s === 409 ? "操作冲突" : s === 413 ? "内容太长了" :
      s === 422 || s === 400 ? "内容不符合要求" : s === 429 ? "操作太频繁，请稍后再试" :
      s === 503 ? "服务暂时不可用，请稍后再试" : s >= 500 ? "服务器出错了，请稍后再试" : "请求失败";
    return what + "（" + s + "）" + (err.message ? "：" + err.message : "");
  }

  function say(id, text) { $(id).textContent = text || ""; }

  function notice(id, text, warn) {
    var box = $(id);
    box.textContent = "";
    box.appendChild(el("span", {}, text));
    box.className = "notice" + (warn ? " warn" : "");
    box.tabIndex = -1;
    box.hidden = false;
    return box;
  }

  // ---- formats ---------------------------------------------------------------------------
  function two(n) { return ("0" + n).slice(-2); }

  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    var now = new Date();
    var hm = two(d.getHours()) + ":" + two(d.getMinutes());
    if (d.toDateString() === now.toDateString()) return "今天 " + hm;
    return (d.getFullYear() !== now.getFullYear() ? d.getFullYear() + "-" : "") +
      two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " + hm;
  }

  // A model's version starts with when it was trained, in UTC: 20261127-095112-a05a883d.
  function trainedAt(version) {
    var m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})/.exec(version || "");
    if (!m) return "";
    return when(new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])).toISOString());
  }

  function pct(x, digits) { return x == null ? "—" : (x * 100).toFixed(digits == null ? 0 : digits) + "%"; }

  // Lines of a textarea: trimmed, blank ones and repeats left out.
  function lines(text) {
    var seen = {};
    return text.split(/\r?\n/).map(function (l) { return l.trim(); }).filter(function (l) {
      if (!l || seen[l]) return false;
      seen[l] = true;
      return true;
    });
  }

  // A value of shop.yml as a shopper would read it in an answer.
  function shopText(value) {
    if (Array.isArray(value)) return value.join("、");
    if (value === true) return "是";
    if (value === false) return "否";
    return value == null ? "" : String(value);
  }

  // ---- what several tabs read --------------------------------------------------------------
  function learnTitles(list) {
    (list || []).forEach(function (e) { K.titles[e.intent] = e.title || e.intent; });
    return list || [];
  }

  function allEntries() {
    return api("/v1/admin/kb/entries").then(function (body) { return learnTitles(body.entries); });
  }

  function shopFacts() {
    if (K.shop) return Promise.resolve(K.shop);
    return api("/v1/admin/kb/shop").then(function (s) { K.shop = s; return s; });
  }

  // An answer template filled from the shop's facts into `box`; placeholders it cannot fill are
  // marked. Returns how many there were.
  function renderTemplate(box, template) {
    box.textContent = "";
    var unknown = 0;
    var re = /\{\{|\}\}|\{([^{}]*)\}/g;
    var last = 0;
    var m;
    while ((m = re.exec(template)) !== null) {
      box.appendChild(document.createTextNode(template.slice(last, m.index)));
      if (m[0] === "{{" || m[0] === "}}") box.appendChild(document.createTextNode(m[0][0]));
      else if (K.shop && Object.prototype.hasOwnProperty.call(K.shop.fields, m[1])) {
        box.appendChild(document.createTextNode(shopText(K.shop.fields[m[1]])));
      } else {
        unknown += 1;
        box.appendChild(el("span", { class: "unknown", title: "店铺信息里没有这一项" }, m[0]));
      }
      last = re.lastIndex;
    }
    box.appendChild(document.createTextNode(template.slice(last)));
    return unknown;
  }

  // ---- a confirmation in the page (a <dialog>: focus stays inside, Esc cancels) ------------
  function confirmBox(text, okLabel) {
    return new Promise(function (resolve) {
      var dialog = $("confirm");
      var back = document.activeElement;
      $("confirm-text").textContent = text;
      $("confirm-ok").textContent = okLabel || "确定";
      dialog.returnValue = "";
      dialog.addEventListener("close", function closed() {
        dialog.removeEventListener("close", closed);
        if (back && back.focus) back.focus();
        resolve(dialog.returnValue === "ok");
      });
      dialog.showModal();
    });
  }

  // ---- tabs (role=tab, arrow keys, Home and End) -----------------------------------------
  function tablist(list, onSelect) {
    var tabs = Array.prototype.slice.call(list.querySelectorAll('[role="tab"]'));
    function select(tab, focus) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        $(t.dataset.panel).hidden = !on;
      });
      if (focus) tab.focus();
      if (onSelect) onSelect(tab);
    }
    tabs.forEach(function (t, i) {
      t.addEventListener("click", function () { select(t); });
      t.addEventListener("keydown", function (e) {
        var next = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 :
          e.key === "Home" ? 0 : e.key === "End" ? tabs.length - 1 : null;
        if (next === null) return;
        e.preventDefault();
        select(tabs[(next + tabs.length) % tabs.length], true);
      });
    });
    return { select: function (id, focus) { select($(id), focus); } };
  }

  function onMainTab(tab) {
    var name = tab.id.replace("tab-", "");
    if (history.replaceState) history.replaceState(null, "", "#" + name);
    if (name === "review") K.review.show();
    else if (name === "kb") K.kb.show();
    else if (name === "try") K.train.refresh();
    else if (name === "train") K.train.show();
    else if (name === "stats") K.stats.show();
  }

  function onKbTab(tab) {
    if (tab.id === "kbtab-shop") K.facts.show();
    if (tab.id === "kbtab-changes") K.facts.showChanges();
    if (tab.id === "kbtab-phrases") K.phrases.show();
  }

  // ---- signing in and out ----------------------------------------------------------------
  function signIn(given, quiet) {
    return api("/v1/admin/model", { token: given })
      .then(function (m) {
        K.token = given;
        store(TOKEN_KEY, given);
        K.model = m;
        $("signin").hidden = true;
        $("app").hidden = false;
        $("whoami").hidden = false;
        $("token").value = "";
        say("signin-error", "");
        K.train.renderModel();
        K.kb.load();
        var wanted = TABS[location.hash.slice(1)] || "tab-review";
        K.tabs.select(wanted);
        if (wanted !== "tab-train") K.train.show();  // a run may be going: the tab's title says so
      })
      .catch(function (err) {
        store(TOKEN_KEY, null);
        var refused = err.status === 401 || err.status === 403;
        // The token kept from earlier in the session: say so only if it stopped working.
        if (quiet && !refused) return;
        say("signin-error", refused ? (quiet ? "令牌已失效，请重新输入" : "令牌不正确，请重新输入") : describe(err));
        $("token").focus();
      });
  }

  function signOut(message) {
    K.token = null;
    store(TOKEN_KEY, null);
    K.train.stop();
    $("app").hidden = true;
    $("whoami").hidden = true;
    $("signin").hidden = false;
    say("signin-error", message || "");
    $("token").focus();
  }

  Object.assign(K, {
    $: $, el: el, api: api, known: known, describe: describe, say: say, notice: notice, when: when,
    trainedAt: trainedAt, pct: pct, lines: lines, shopText: shopText, titleOf: titleOf, learnTitles: learnTitles,
    allEntries: allEntries, shopFacts: shopFacts, renderTemplate: renderTemplate, confirmBox: confirmBox,
    tablist: tablist
  });

  // ---- wiring ----------------------------------------------------------------------------
  function init() {
    K.tabs = tablist(document.querySelector(".main-tabs"), onMainTab);
    tablist(document.querySelector(".sub-tabs"), onKbTab);
    [K.review, K.kb, K.facts, K.phrases, K.train, K.stats].forEach(function (part) { part.init(); });

    $("signin-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var given = $("token").value.trim();
      if (given) signIn(given);
    });
    $("sign-out").addEventListener("click", function () { signOut(""); });
    window.addEventListener("beforeunload", function (e) {
      if (K.token && K.kb.dirty()) { e.preventDefault(); e.returnValue = ""; }
    });

    var saved = null;
    try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* no storage */ }
    if (saved) signIn(saved, true); else $("token").focus();
  }

  // The tabs' scripts come after this one, all deferred: they have run when DOMContentLoaded fires
  // (while they run, the document is already "interactive").
  if (document.readyState === "complete") init();
  else document.addEventListener("DOMContentLoaded", init);
})();
