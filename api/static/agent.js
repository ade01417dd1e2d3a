/*
 * kefu agent console: the handoff queue, a handoff's transcript and the bot's guesses, claim, reply,
 * resolve with a label. Live through GET /v1/agent/events (server-sent events). Every text from a
 * shopper is rendered with textContent, never innerHTML.
 */
(function () {
  "use strict";

  var TOKEN_KEY = "kefu.agentToken";
  var TITLE = "客服工作台";
  var REASONS = {
    requested: "顾客要求人工",
    complaint: "投诉",
    problem: "商品问题",
    low_confidence: "机器人没把握",
    repeated_fallback: "多次没听懂",
    out_of_scope: "超出服务范围",
    reception: "人工优先接待"
  };
  var STATUSES = { waiting: "等待中", assigned: "处理中", resolved: "已解决" };
  var RESOLVED_PAGE = 50;       // resolved handoffs per page (更多 reads the next)
  var LONG_WAIT_MINUTES = 5;    // a waiting handoff this old is highlighted
  var LATE_REPLY_MINUTES = 3;   // a shopper unanswered this long is highlighted
  var ROLES = { shopper: "顾客", bot: "机器人", agent: "客服", system: "系统", transfer: "转交", requeue: "退回队列" };
  var PRESENCE = { online: "在线", busy: "忙碌", away: "离开" };

  var token = null;
  var agentName = null;
  var tab = "waiting";
  var handoffs = [];          // every open handoff (waiting, assigned), oldest first
  var resolved = [];          // the newest resolved handoffs, newest first
  var resolvedNext = null;    // the `before` of the next page of resolved ones (null: no more)
  var unread = {};            // handoff id -> shopper messages the agent has not seen yet
  var filters = { q: "", reason: "", mine: false };
  var stale = false;          // the filters changed while a refresh was under way
  var openId = null;
  var current = null;         // the open handoff's detail
  var shownIds = {};          // message ids in the open transcript
  var titles = {};            // catalogue id -> title
  var stream = null;
  var audio = null;
  var refreshing = null;
  var colleagues = [];        // the shop's agents [{name, display_name}] (GET /v1/agents), for transfers
  var draftsFor = null;       // the shopper message the shown drafts answer
  var phraseTyping = null;
  var heartbeat = null;       // the console's heartbeat timer (the event stream also tells the server it is here)
  var autoAssign = false;     // the shop gives chats out (KEFU_ASSIGNMENT=auto): the one given a chat is called

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

  function api(path, options) {
    options = options || {};
    var init = { method: options.method || "GET",
                 headers: { "Accept": "application/json", "Authorization": "Bearer " + (options.token || token) } };
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var err = new Error(body.message || ("HTTP " + r.status));
          err.status = r.status;
          if ((r.status === 401 || r.status === 403) && !options.token) signOut("登录已失效，请重新登录");
          throw err;
        }
        return body;
      });
    });
  }

  // ---- time ------------------------------------------------------------------------------
  function since(iso, until) {
    if (!iso) return "";
    var end = until ? new Date(until).getTime() : Date.now();
    var s = Math.max(0, Math.round((end - new Date(iso).getTime()) / 1000));
    if (s < 60) return s + "秒";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "分" + (s % 60 ? (s % 60) + "秒" : "");
    var h = Math.floor(m / 60);
    return h + "小时" + (m % 60 ? (m % 60) + "分" : "");
  }

  function clock(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function minutes(iso) {
    return iso ? Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 60000)) : 0;
  }

  function longWait(h) {
    return h.status === "waiting" && minutes(h.created_at) >= LONG_WAIT_MINUTES;
  }

  // Whether the shopper wrote last, and for how long they have waited for a person's reply.
  function replyState(h) {
    if (h.status === "resolved") return null;
    if (!h.waiting_since) return { text: "已回复", late: false };
    var m = minutes(h.waiting_since);
    return { text: "待回复 · " + (m < 1 ? "不到 1 分钟" : m + " 分钟"), late: m >= LATE_REPLY_MINUTES };
  }

  function waited(h) {
    if (longWait(h)) return "已等待 " + minutes(h.created_at) + " 分钟";
    if (h.status === "waiting") return "已等待 " + since(h.created_at);
    if (h.status === "assigned") return "等待了 " + since(h.created_at, h.assigned_at);
    return "用时 " + since(h.created_at, h.resolved_at);
  }

  // A link from a notification (the webhook's url): /agent#handoff-42 opens handoff 42.
  function openLinked() {
    var m = /^#handoff-(\d+)$/.exec(location.hash);
    if (m && token) openHandoff(Number(m[1]));
  }

  // ---- signing in and out ----------------------------------------------------------------
  function signIn(given, quiet) {
    return api("/v1/handoffs?status=waiting", { token: given })
      .then(function () {
        token = given;
        store(TOKEN_KEY, token);
        $("signin").hidden = true;
        $("console").hidden = false;
        $("whoami").hidden = false;
        $("token").value = "";
        $("signin-error").textContent = "";
        loadCatalogue();
        loadAgents();
        beat();
        clearInterval(heartbeat);
        heartbeat = setInterval(beat, 20000);
        connect();
        return refresh().then(openLinked);
      })
      .catch(function (err) {
        store(TOKEN_KEY, null);
        if (!quiet) {
          $("signin-error").textContent = err.status === 401 || err.status === 403
            ? "令牌不正确，请重新输入" : "无法连接服务器：" + err.message;
          $("token").focus();
        }
      });
  }

  function signOut(message) {
    if (token) leave();
    clearInterval(heartbeat);
    token = null;
    store(TOKEN_KEY, null);
    if (stream) { stream.close(); stream = null; }
    openId = null;
    current = null;
    unread = {};
    notice("");
    $("console").hidden = true;
    $("whoami").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    document.title = TITLE;
    $("token").focus();
  }

  function loadCatalogue() {
    api("/v1/catalogue").then(function (body) {
      var select = $("resolve-label");
      while (select.options.length > 1) select.remove(1);
      body.data.forEach(function (e) {
        titles[e.id] = e.title;
        select.appendChild(el("option", { value: e.id }, e.title && e.title !== e.id ? e.id + " · " + e.title : e.id));
      });
      if (current) renderDetail(current);
    }).catch(function () {});
  }

  function loadAgents() {
    api("/v1/agents").then(function (body) {
      colleagues = body.data || [];
      agentName = body.me;
      showWhoami();
      if (current) renderDetail(current);
    }).catch(function () {});
  }

  function others() {
    return colleagues.filter(function (a) { return a.name !== agentName; });
  }

  function shownName(name) {
    var found = colleagues.filter(function (a) { return a.name === name; })[0];
    return found && found.display_name !== name ? name + "（" + found.display_name + "）" : name;
  }

  function showWhoami() {
    $("agent-name").textContent = agentName ? "客服：" + shownName(agentName) : "";
  }

  // ---- presence: 在线 / 忙碌 / 离开 -----------------------------------------------------------
  // The server counts the agent as away when neither the event stream nor this heartbeat has been heard
  // for a while (KEFU_PRESENCE_TIMEOUT), and at once when the console closes (leave).
  function beat() {
    if (!token) return;
    api("/v1/agent/heartbeat", { method: "POST" }).then(showPresence).catch(function () {});
  }

  function leave() {
    try {
      fetch("/v1/agent/presence", { method: "DELETE", keepalive: true,
                                    headers: { "Authorization": "Bearer " + token } }).catch(function () {});
    } catch (e) { /* closing anyway */ }
  }

  function showPresence(p) {
    var select = $("presence");
    if (document.activeElement !== select) select.value = p.chosen;
    $("presence-dot").className = "presence-dot " + p.status;
    var mode = $("desk-mode");
    autoAssign = p.assignment === "auto";
    mode.hidden = !autoAssign;
    mode.textContent = "自动分配 · 每人最多 " + p.max_chats + " 个会话 · 我有 " + p.chats + " 个";
  }

  function setPresence() {
    var status = $("presence").value;
    api("/v1/agent/presence", { method: "PUT", body: { status: status } }).then(showPresence)
      .catch(function (err) { notice("状态没有切换成功：" + err.message); });
  }

  // ---- live events -----------------------------------------------------------------------
  // The stream's URL carries a short-lived ticket, never the agent's token (EventSource cannot send
  // headers, and URLs end up in logs and histories): a new ticket for every (re)connection.
  function connect() {
    if (stream) stream.close();
    stream = null;
    if (!token) return;
    api("/v1/agent/ticket", { method: "POST" }).then(function (body) {
      if (!token) return;
      if (stream) stream.close();
      stream = new EventSource("/v1/agent/events?ticket=" + encodeURIComponent(body.ticket));
      listen(stream);
    }, function (err) {
      live(false);
      if (err.status !== 401 && err.status !== 403) setTimeout(connect, 5000);  // else signed out
    });
  }

  function listen(source) {
    source.addEventListener("ready", function (e) {
      try { agentName = JSON.parse(e.data).agent; } catch (err) { /* keep the old name */ }
      showWhoami();
      live(true);
      refresh();  // whatever happened while (re)connecting
      if (openId) openHandoff(openId, true);
    });
    source.addEventListener("handoff", function () {
      if (!autoAssign) beep();  // given out automatically, the chat beeps for whoever gets it ("assigned")
      refresh();
    });
    source.addEventListener("message", function (e) {
      var ev = parse(e.data);
      if (ev && ev.handoff_id === openId && ev.message) {
        addMessage(ev.message);
        if (current && ev.message.role === "shopper" && !current.waiting_since) {
          current.waiting_since = ev.message.created_at;
        }
      }
      if (ev && ev.message && ev.message.role === "shopper") noticeShopper(ev.handoff_id);
      if (ev && ev.handoff_id === openId && ev.message && ev.message.role === "shopper") loadDrafts(openId);
      refresh();
    });
    source.addEventListener("transferred", function (e) {
      var ev = parse(e.data);
      if (!ev || !ev.handoff) return;
      var id = ev.handoff.id;
      if (id === openId && ev.message) addMessage(ev.message);
      if (ev.to === agentName) {
        notice("“" + shownName(ev.from) + "”转交给您会话 #" + id + (ev.note ? "：" + ev.note : ""));
        if (id !== openId || document.hidden) unread[id] = (unread[id] || 0) + 1;
        beep();
      }
      refresh();
      if (id === openId) openHandoff(openId, true);
    });
    source.addEventListener("assigned", function (e) {
      var ev = parse(e.data);
      if (!ev || !ev.handoff) return;
      var id = ev.handoff.id;
      if (ev.to === agentName) {
        notice("系统为您分配了新会话 #" + id + "（" + (REASONS[ev.handoff.reason] || ev.handoff.reason) + "）");
        if (id !== openId || document.hidden) unread[id] = (unread[id] || 0) + 1;
        beep();
        beat();
      }
      refresh();
      if (id === openId) openHandoff(openId, true);
    });
    source.addEventListener("requeued", function (e) {
      var ev = parse(e.data);
      if (!ev || !ev.handoff) return;
      var id = ev.handoff.id;
      if (id === openId && ev.message) addMessage(ev.message);
      if (ev.from === agentName) {
        notice("会话 #" + id + " 的顾客等待回复超过 " + waitText(ev.message && ev.message.after) + "，已退回队列");
        beep();
        beat();
      }
      refresh();
      if (id === openId) openHandoff(openId, true);
    });
    ["claimed", "resolved"].forEach(function (type) {
      source.addEventListener(type, function (e) {
        var ev = parse(e.data);
        // At once, before the list is read again: a shopper's message that follows at once is then
        // counted for the agent who now has the chat, not for everyone who saw it waiting.
        if (ev && ev.handoff) handoffs.forEach(function (h) {
          if (h.id === ev.handoff.id) { h.status = ev.handoff.status; h.agent = ev.handoff.agent; }
        });
        refresh();
        if (ev && ev.handoff && ev.handoff.id === openId) openHandoff(openId, true);
      });
    });
    source.onerror = function () {
      // EventSource would retry with the same URL, whose ticket may have expired: reconnect with a
      // new one (which also checks that the token still holds).
      live(false);
      source.close();
      setTimeout(function () { if (token && source === stream) connect(); }, 2000);
    };
  }

  // A shopper wrote in a chat that is waiting or the agent's own: a badge on it (unless the agent is
  // looking at it), a short beep and the count in the tab's title.
  function noticeShopper(id) {
    var h = handoffs.filter(function (x) { return x.id === id; })[0];
    if (h && h.status === "assigned" && h.agent !== agentName) return;
    if (id === openId && !document.hidden) return;
    unread[id] = (unread[id] || 0) + 1;
    beep();
    renderList();
  }

  function waitText(seconds) {
    if (!seconds) return "规定时间";
    return seconds >= 60 ? Math.round(seconds / 60) + " 分钟" : seconds + " 秒";
  }

  function notice(text) {
    $("notice").textContent = text;
    $("notice").hidden = !text;
  }

  function unreadTotal() {
    return Object.keys(unread).reduce(function (n, k) { return n + unread[k]; }, 0);
  }

  function parse(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  function live(on) {
    $("live").textContent = on ? "实时更新中" : "连接中断，正在重连…";
    $("live").className = "live" + (on ? " on" : " off");
  }

  function unlockAudio() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audio) {
      try { audio = new Ctx(); } catch (e) { return; }
    }
    if (audio.state === "suspended") audio.resume().catch(function () {});
  }

  function beep() {
    if (!audio) return;
    try {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.001, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.3);
    } catch (e) { /* no sound, no harm */ }
  }

  // ---- the queue -------------------------------------------------------------------------
  function refresh() {
    if (!token) return Promise.resolve();
    if (refreshing) { stale = true; return refreshing; }
    var query = filterQuery();
    refreshing = Promise.all([api("/v1/handoffs" + (query ? "?" + query : "")),
                              api("/v1/handoffs?status=resolved&limit=" + RESOLVED_PAGE + (query ? "&" + query : ""))
    ]).then(function (bodies) {
      handoffs = bodies[0].data || [];
      resolved = bodies[1].data || [];
      resolvedNext = bodies[1].next || null;
      renderList();
    }).catch(function () {}).then(function () {
      refreshing = null;
      if (stale) { stale = false; return refresh(); }
    });
    return refreshing;
  }

  function filterQuery() {
    var parts = [];
    if (filters.q) parts.push("q=" + encodeURIComponent(filters.q));
    if (filters.reason) parts.push("reason=" + encodeURIComponent(filters.reason));
    if (filters.mine && agentName) parts.push("agent=" + encodeURIComponent(agentName));
    return parts.join("&");
  }

  function moreResolved() {
    if (!resolvedNext) return;
    var query = filterQuery();
    api("/v1/handoffs?status=resolved&limit=" + RESOLVED_PAGE + "&before=" + resolvedNext + (query ? "&" + query : ""))
      .then(function (body) {
        resolved = resolved.concat(body.data || []);
        resolvedNext = body.next || null;
        renderList();
      }).catch(function (err) { $("action-error").textContent = err.message; });
  }

  function renderList() {
    var counts = { waiting: 0, assigned: 0, resolved: resolved.length };
    handoffs.forEach(function (h) { if (h.status in counts) counts[h.status] += 1; });
    Object.keys(counts).forEach(function (s) {
      var shown = s === "resolved" && resolvedNext ? counts[s] + "+" : counts[s];
      document.querySelector('[data-count="' + s + '"]').textContent = counts[s] ? "(" + shown + ")" : "";
    });
    var fresh = unreadTotal();
    document.title = fresh ? "(" + fresh + ") 新消息 · " + TITLE
      : counts.waiting ? "(" + counts.waiting + ") " + TITLE : TITLE;

    var items = tab === "resolved" ? resolved : handoffs.filter(function (h) { return h.status === tab; });
    var list = $("handoff-list");
    var focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.handoff : null;
    list.textContent = "";
    items.forEach(function (h) {
      var li = el("li");
      var state = replyState(h);
      var fresh = unread[h.id] || 0;
      var label = ["会话 " + h.id, REASONS[h.reason] || h.reason, waited(h)];
      if (state) label.push(state.text);
      if (fresh) label.push(fresh + " 条新消息");
      var btn = el("button", { type: "button", class: "item" + (longWait(h) ? " item-long" : ""),
                               "data-handoff": String(h.id), "aria-label": label.join("，") });
      if (h.id === openId) btn.setAttribute("aria-current", "true");
      var top = el("span", { class: "item-top" });
      top.appendChild(el("span", { class: "item-id" }, "#" + h.id));
      top.appendChild(el("span", { class: "reason reason-" + h.reason }, REASONS[h.reason] || h.reason));
      if (fresh) top.appendChild(el("span", { class: "unread", "aria-hidden": "true" }, String(fresh)));
      top.appendChild(el("span", { class: "item-wait" + (longWait(h) ? " long-wait" : "") }, waited(h)));
      btn.appendChild(top);
      btn.appendChild(el("span", { class: "item-last" }, h.last_message));
      if (state) {
        btn.appendChild(el("span", { class: "item-reply" + (h.waiting_since ? " awaiting" : "") +
                                     (state.late ? " late" : "") }, state.text));
      }
      if (h.agent) btn.appendChild(el("span", { class: "item-agent" }, "客服 " + h.agent));
      btn.addEventListener("click", function () { openHandoff(h.id); });
      li.appendChild(btn);
      list.appendChild(li);
    });
    $("empty").hidden = items.length > 0;
    $("more").hidden = !(tab === "resolved" && resolvedNext);
    if (focused) {
      var again = list.querySelector('[data-handoff="' + focused + '"]');
      if (again) again.focus();
    }
  }

  function selectTab(status, focus) {
    tab = status;
    Array.prototype.forEach.call(document.querySelectorAll('[role="tab"]'), function (t) {
      var on = t.dataset.status === status;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      if (on) {
        $("handoff-list").setAttribute("aria-labelledby", t.id);
        if (focus) t.focus();
      }
    });
    renderList();
  }

  // ---- one handoff -----------------------------------------------------------------------
  function openHandoff(id, quiet) {
    var switching = id !== openId;
    openId = id;
    if (unread[id] && !document.hidden) { delete unread[id]; renderList(); }
    return api("/v1/handoffs/" + id).then(function (h) {
      if (openId !== id) return;
      current = h;
      if (switching) {
        shownIds = {};
        $("transcript").textContent = "";
        $("reply-text").value = "";
        $("resolve-note").value = "";
        $("resolve-label").value = "";
        $("action-error").textContent = "";
        draftsFor = null;
        $("drafts").textContent = "";
        showTransfer(false);
        showPhrases(false);
      }
      renderDetail(h);
      if (!$("reply-form").hidden) loadDrafts(id);
      (h.transcript || []).forEach(addMessage);
      renderList();
      if (!quiet) $("handoff-title").focus();
    }).catch(function (err) {
      $("action-error").textContent = err.message;
    });
  }

  function renderDetail(h) {
    $("placeholder").hidden = true;
    $("handoff").hidden = false;
    $("handoff-title").textContent = "会话 #" + h.id;
    $("handoff-title").tabIndex = -1;
    var meta = [STATUSES[h.status] || h.status, REASONS[h.reason] || h.reason, waited(h)];
    if (h.status === "waiting" && h.position) meta.push("排队第 " + h.position + " 位");
    var state = replyState(h);
    if (state) meta.push(state.text);
    if (h.agent) meta.push("客服 " + h.agent);
    if (h.label) meta.push("标注 " + h.label);
    $("handoff-meta").textContent = meta.join(" · ");

    var guesses = $("guesses");
    guesses.textContent = "";
    (h.guesses || []).forEach(function (g) {
      var li = el("li", { class: "guess" });
      var name = titles[g.intent] && titles[g.intent] !== g.intent ? g.intent + " · " + titles[g.intent] : g.intent;
      li.appendChild(el("span", { class: "guess-name" }, name));
      var pct = Math.round((g.confidence || 0) * 100);
      var bar = el("meter", { min: "0", max: "100", value: String(pct), "aria-label": name });
      li.appendChild(bar);
      li.appendChild(el("span", { class: "guess-pct" }, pct + "%"));
      guesses.appendChild(li);
    });
    if (!h.guesses || !h.guesses.length) guesses.appendChild(el("li", {}, "（无）"));

    var mine = h.status === "assigned" && h.agent === agentName;
    var open = h.status === "waiting" || mine;
    $("claim").hidden = h.status !== "waiting";
    $("transfer-open").hidden = !open || !others().length;
    if (!open) showTransfer(false);
    $("reply-form").hidden = !open;
    $("resolve-form").hidden = !open;
    if (h.status === "assigned" && !mine) {
      $("action-error").textContent = "该会话已由 " + h.agent + " 处理";
    }
  }

  function addMessage(m) {
    if (!m || shownIds[m.id]) return;
    shownIds[m.id] = true;
    var box = $("transcript");
    var node = el("div", { class: "msg msg-" + m.role, "data-id": String(m.id) });
    var who = ROLES[m.role] || m.role;
    if (m.role === "agent" && m.author) who += " " + m.author;
    if (m.role === "transfer") who += " · " + shownName(m.author) + " → " + shownName(m.to);
    var head = el("span", { class: "msg-head" }, who + (m.created_at ? " " + clock(m.created_at) : ""));
    node.appendChild(head);
    if (m.intent && m.role === "bot") node.appendChild(el("span", { class: "msg-intent" }, m.intent));
    if (m.role === "requeue") who += " · " + shownName(m.author);
    var text = m.role === "transfer" && !m.text ? "（无备注）" : m.text;
    if (m.role === "requeue") text = "顾客等待回复超过 " + waitText(m.after) + "，客服未回复，会话已退回队列";
    node.appendChild(el("span", { class: "msg-text" }, text));
    if (m.image) node.appendChild(thumbnail(m.image));
    box.appendChild(node);
    box.scrollTop = box.scrollHeight;
  }

  // A shopper's picture: fetched with the agent's token (never in a URL), shown from a blob: URL as a
  // thumbnail button that opens it full size.
  function thumbnail(image) {
    var btn = el("button", { type: "button", class: "msg-image", "aria-label": "查看顾客发送的图片（原图）" });
    var img = el("img", { alt: "顾客发送的图片" });
    btn.appendChild(img);
    fetch("/v1/images/" + encodeURIComponent(image.id), { headers: { "Authorization": "Bearer " + token } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.blob();
      })
      .then(function (blob) { img.src = URL.createObjectURL(blob); })
      .catch(function () { img.alt = "图片加载失败"; });
    btn.addEventListener("click", function () {
      if (!img.src) return;
      $("image-full").src = img.src;
      $("image-view").showModal();
      $("image-close").focus();
    });
    return btn;
  }

  function act(promise) {
    $("action-error").textContent = "";
    return promise.catch(function (err) {
      $("action-error").textContent = err.message;
      if (openId) openHandoff(openId, true);
      throw err;
    });
  }

  function claim() {
    if (!openId) return;
    act(api("/v1/handoffs/" + openId + "/claim", { method: "POST" })).then(function (h) {
      agentName = agentName || h.agent;
      selectTab("assigned");  // follow the handoff to the tab it is now in
      refresh();
      return openHandoff(openId, true);
    }).then(function () { $("reply-text").focus(); }).catch(function () {});
  }

  function reply(e) {
    e.preventDefault();
    var text = $("reply-text").value;
    if (!openId || !text.trim()) return;
    var id = openId;
    act(api("/v1/handoffs/" + id + "/messages", { method: "POST", body: { text: text } })).then(function (m) {
      $("reply-text").value = "";
      if (current && current.id === id) {
        current.waiting_since = null;
        renderDetail(current);
      }
      refresh();  // the queue's 待回复 becomes 已回复
      if (openId === id) addMessage(m);
      if (current && current.status === "waiting") {  // replying took the handoff
        selectTab("assigned");
        refresh();
        openHandoff(id, true);
      }
    }).catch(function () {});
  }

  function resolve(e) {
    e.preventDefault();
    if (!openId) return;
    if (current && current.id === openId && current.waiting_since &&
        !window.confirm("顾客的最后一条消息还没有回复，确定要结束会话吗？")) return;
    var body = {};
    var label = $("resolve-label").value;
    var note = $("resolve-note").value.trim();
    if (label) body.label = label;
    if (note) body.note = note;
    act(api("/v1/handoffs/" + openId + "/resolve", { method: "POST", body: body })).then(function () {
      selectTab("resolved");
      refresh();
      return openHandoff(openId, true);
    }).catch(function () {});
  }

  // ---- the agents' help: drafts, 快捷短语, transfer -------------------------------------------
  // Drafts: the bot's answers to the shopper's latest message, one click puts one in the reply box
  // (the agent edits it there and sends it; nothing is sent by a click).
  function loadDrafts(id) {
    api("/v1/handoffs/" + id + "/drafts").then(function (body) {
      if (openId !== id || (body.message && body.message.id === draftsFor)) return;
      draftsFor = body.message ? body.message.id : null;
      var list = $("drafts");
      list.textContent = "";
      (body.drafts || []).forEach(function (d) {
        var li = el("li");
        var pct = Math.round((d.confidence || 0) * 100);
        var btn = el("button", { type: "button", class: "draft", title: d.text,
                                 "aria-label": "建议回复：" + d.title + "，" + pct + "%，放进回复框" });
        btn.appendChild(document.createTextNode(d.title + " "));
        btn.appendChild(el("span", { class: "draft-pct" }, pct + "%"));
        btn.addEventListener("click", function () { putText(d.text, true); });
        li.appendChild(btn);
        list.appendChild(li);
      });
      if (!body.drafts || !body.drafts.length) list.appendChild(el("li", { class: "drafts-none" }, "（无）"));
    }).catch(function () {});
  }

  // A draft replaces what the box holds; a phrase goes in where the cursor is.
  function putText(text, replace) {
    var box = $("reply-text");
    if (replace || !box.value) {
      box.value = text;
    } else {
      var at = box.selectionStart == null ? box.value.length : box.selectionStart;
      var end = box.selectionEnd == null ? at : box.selectionEnd;
      box.value = box.value.slice(0, at) + text + box.value.slice(end);
      box.selectionStart = box.selectionEnd = at + text.length;
    }
    box.focus();
    if (replace) box.selectionStart = box.selectionEnd = box.value.length;
  }

  function showPhrases(on) {
    $("phrases").hidden = !on;
    $("phrases-open").setAttribute("aria-expanded", on ? "true" : "false");
    if (on) {
      $("phrase-search").value = "";
      loadPhrases("");
      $("phrase-search").focus();
    }
  }

  function loadPhrases(q) {
    api("/v1/phrases" + (q ? "?q=" + encodeURIComponent(q) : "")).then(function (body) {
      if ($("phrase-search").value.trim() !== q) return;  // typed on meanwhile
      var list = $("phrase-list");
      list.textContent = "";
      (body.data || []).forEach(function (p) {
        var li = el("li");
        var btn = el("button", { type: "button", class: "phrase" });
        btn.appendChild(el("span", { class: "phrase-title" }, p.title));
        btn.appendChild(el("span", { class: "phrase-text" }, p.text));
        btn.addEventListener("click", function () {
          showPhrases(false);
          putText(p.text, false);
        });
        li.appendChild(btn);
        list.appendChild(li);
      });
      $("phrase-empty").hidden = (body.data || []).length > 0;
    }).catch(function (err) { $("action-error").textContent = err.message; });
  }

  function showTransfer(on) {
    $("transfer-form").hidden = !on;
    $("transfer-open").setAttribute("aria-expanded", on ? "true" : "false");
    if (!on) return;
    var select = $("transfer-to");
    fillColleagues(select);
    $("transfer-note").value = "";
    select.focus();
    api("/v1/agents").then(function (body) {  // who is at the desk now
      colleagues = body.data || colleagues;
      var chosen = select.value;
      fillColleagues(select);
      if (chosen) select.value = chosen;
    }).catch(function () {});
  }

  function fillColleagues(select) {
    select.textContent = "";
    others().forEach(function (a) {
      var status = a.status ? " · " + PRESENCE[a.status] + (a.status !== "away" ? "（" + a.chats + " 个会话）" : "") : "";
      select.appendChild(el("option", { value: a.name }, shownName(a.name) + status));
    });
  }

  function transfer(e) {
    e.preventDefault();
    var to = $("transfer-to").value;
    if (!openId || !to) return;
    var id = openId;
    var body = { to: to, note: $("transfer-note").value.trim() };
    act(api("/v1/handoffs/" + id + "/transfer", { method: "POST", body: body })).then(function () {
      showTransfer(false);
      notice("已将会话 #" + id + " 转交给" + shownName(to));
      refresh();
      return openHandoff(id, true);
    }).catch(function () {});
  }

  function wireAssist() {
    $("phrases-open").addEventListener("click", function () { showPhrases($("phrases").hidden); });
    $("phrase-search").addEventListener("input", function () {
      clearTimeout(phraseTyping);
      phraseTyping = setTimeout(function () { loadPhrases($("phrase-search").value.trim()); }, 200);
    });
    $("phrase-search").addEventListener("keydown", function (e) {
      if (e.key !== "Enter" || e.isComposing) return;
      e.preventDefault();  // not the reply form's submit: Enter takes the first phrase found
      var first = $("phrase-list").querySelector(".phrase");
      if (first) first.click();
    });
    $("phrases").addEventListener("keydown", function (e) {
      if (e.key !== "Escape") return;
      e.preventDefault();
      showPhrases(false);
      $("phrases-open").focus();
    });
    $("transfer-open").addEventListener("click", function () { showTransfer($("transfer-form").hidden); });
    $("transfer-cancel").addEventListener("click", function () { showTransfer(false); $("transfer-open").focus(); });
    $("transfer-form").addEventListener("submit", transfer);
  }

  // ---- wiring ----------------------------------------------------------------------------
  function init() {
    $("signin-form").addEventListener("submit", function (e) {
      e.preventDefault();
      unlockAudio();  // a click or a key press: browsers let the page make sounds from now on
      var given = $("token").value.trim();
      if (given) signIn(given);
    });
    $("sign-out").addEventListener("click", function () { signOut(""); });
    $("presence").addEventListener("change", setPresence);
    window.addEventListener("pagehide", function () { if (token) leave(); });
    window.addEventListener("pageshow", function (e) { if (e.persisted && token) beat(); });
    document.addEventListener("pointerdown", unlockAudio, { once: true });
    document.addEventListener("keydown", unlockAudio, { once: true });

    var tabs = Array.prototype.slice.call(document.querySelectorAll('[role="tab"]'));
    tabs.forEach(function (t, i) {
      t.addEventListener("click", function () { selectTab(t.dataset.status); });
      t.addEventListener("keydown", function (e) {
        var next = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : null;
        if (next === null) return;
        e.preventDefault();
        selectTab(tabs[(next + tabs.length) % tabs.length].dataset.status, true);
      });
    });

    $("claim").addEventListener("click", claim);
    $("reply-form").addEventListener("submit", reply);
    $("reply-text").addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.isComposing) {
        e.preventDefault();
        $("reply-form").requestSubmit();
      }
    });
    $("resolve-form").addEventListener("submit", resolve);
    wireAssist();
    $("more").addEventListener("click", moreResolved);
    document.querySelector(".queue-filter").addEventListener("submit", function (e) { e.preventDefault(); });
    var typing = null;
    $("queue-search").addEventListener("input", function () {
      clearTimeout(typing);
      typing = setTimeout(function () { filters.q = $("queue-search").value.trim(); refresh(); }, 300);
    });
    $("queue-reason").addEventListener("change", function () { filters.reason = $("queue-reason").value; refresh(); });
    $("queue-mine").addEventListener("change", function () { filters.mine = $("queue-mine").checked; refresh(); });
    Object.keys(REASONS).forEach(function (r) { $("queue-reason").appendChild(el("option", { value: r }, REASONS[r])); });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && openId && unread[openId]) { delete unread[openId]; renderList(); }
    });
    setInterval(function () {
      if (token) {
        renderList();
        if (current) renderDetail(current);
      }
    }, 15000);

    var saved = null;
    try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* no storage */ }
    if (saved) signIn(saved, true); else $("token").focus();
    window.addEventListener("hashchange", openLinked);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
