/*
 * kefu chat widget. One tag on any page of the shop:
 *
 *   <script src="https://kefu.example.com/static/kefu-widget.js" defer
 *           data-endpoint="https://kefu.example.com" data-open="false"></script>
 *
 * data-endpoint  base URL of the kefu server (default: the origin this script was loaded from)
 * data-open      "true" opens the chat window at once
 * data-accent    main colour (CSS colour, default #1677ff)
 *
 * The widget lives in a shadow root (the page's CSS cannot break it, nor it the page's), renders
 * every message with textContent (never innerHTML), keeps the session id in localStorage and
 * reloads the conversation from the server, and receives agents' replies by server-sent events,
 * falling back to polling.
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector('script[src*="kefu-widget.js"]');
  if (!script || window.__kefuWidget) return;
  window.__kefuWidget = true;

  var data = script.dataset || {};
  var BASE = (data.endpoint || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var SESSION_KEY = "kefu.session:" + BASE;
  var OPEN_KEY = "kefu.open:" + BASE;
  var POLL_MS = 4000;
  var MAX_CHARS = 1000;

  // ---- state -----------------------------------------------------------------------------
  var config = null;          // GET /v1/widget
  var sessionId = read(localStorage, SESSION_KEY);
  var lastId = 0;             // largest message id shown
  var shown = {};             // message id -> true
  var pending = [];           // shopper bubbles sent but not yet given an id
  var events = null;          // EventSource
  var pollTimer = null;
  var sseFailures = 0;
  var unread = 0;
  var busy = false;

  // ---- DOM -------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    if (text != null) node.textContent = text;
    return node;
  }

  // A speech bubble (SVG, so it does not depend on an emoji font).
  function chatIcon() {
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "kefu-launcher-icon");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(NS, "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"
                      + "M7 10.5a1.5 1.5 0 1 0 0 .01M12 10.5a1.5 1.5 0 1 0 0 .01M17 10.5a1.5 1.5 0 1 0 0 .01");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("fill-rule", "evenodd");
    svg.appendChild(path);
    return svg;
  }

  var host = el("div", { id: "kefu-widget" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var wrap = el("div", { class: "kefu", hidden: "" });  // shown once the stylesheet has loaded
  var css = el("link", { rel: "stylesheet", href: BASE + "/static/kefu-widget.css" });
  css.addEventListener("load", function () { wrap.hidden = false; });
  css.addEventListener("error", function () { wrap.hidden = false; });
  if (data.accent) host.style.setProperty("--kefu-accent", data.accent);

  var launcher = el("button", { type: "button", class: "kefu-launcher", "aria-label": "打开在线客服",
                                "aria-expanded": "false", "aria-controls": "kefu-panel" });
  launcher.appendChild(chatIcon());
  launcher.appendChild(el("span", { class: "kefu-launcher-text" }, "在线客服"));
  var badge = el("span", { class: "kefu-badge", hidden: "", "aria-label": "未读消息" });
  launcher.appendChild(badge);

  var panel = el("section", { id: "kefu-panel", class: "kefu-panel", role: "dialog", "aria-modal": "false",
                              "aria-labelledby": "kefu-title", hidden: "" });
  var header = el("header", { class: "kefu-header" });
  var heading = el("div", { class: "kefu-heading" });
  var title = el("h2", { id: "kefu-title", class: "kefu-title" }, "在线客服");
  var subtitle = el("p", { class: "kefu-subtitle" }, "智能客服 · 人工客服 09:00-23:00");
  heading.appendChild(title);
  heading.appendChild(subtitle);
  var closeBtn = el("button", { type: "button", class: "kefu-close", "aria-label": "关闭客服窗口" }, "×");
  header.appendChild(heading);
  header.appendChild(closeBtn);

  var status = el("div", { class: "kefu-status", role: "status", "aria-live": "polite", hidden: "" });
  var log = el("div", { class: "kefu-log", role: "log", "aria-live": "polite", "aria-label": "聊天记录",
                        tabindex: "0" });
  var greeting = el("div", { class: "kefu-msg kefu-bot kefu-greeting", hidden: "" });
  log.appendChild(greeting);
  var typing = el("div", { class: "kefu-typing", role: "status", "aria-label": "客服正在输入", hidden: "" });
  for (var i = 0; i < 3; i++) typing.appendChild(el("span", { class: "kefu-dot", "aria-hidden": "true" }));

  var quick = el("div", { class: "kefu-quick", role: "group", "aria-label": "常见问题" });
  var humanBtn = el("button", { type: "button", class: "kefu-chip kefu-human", "aria-label": "转人工客服" }, "转人工");

  var form = el("form", { class: "kefu-form", "aria-label": "发送消息" });
  var input = el("textarea", { class: "kefu-input", rows: "1", maxlength: String(MAX_CHARS),
                               "aria-label": "输入消息", placeholder: "请输入您的问题，Enter 发送" });
  var send = el("button", { type: "submit", class: "kefu-send", "aria-label": "发送" }, "发送");
  form.appendChild(input);
  form.appendChild(send);

  panel.appendChild(header);
  panel.appendChild(status);
  panel.appendChild(log);
  panel.appendChild(quick);
  panel.appendChild(form);
  wrap.appendChild(panel);
  wrap.appendChild(launcher);
  root.appendChild(css);
  root.appendChild(wrap);

  // ---- helpers ---------------------------------------------------------------------------
  function read(store, key) {
    try { return store.getItem(key); } catch (e) { return null; }
  }
  function write(store, key, value) {
    try {
      if (value == null) store.removeItem(key); else store.setItem(key, value);
    } catch (e) { /* private mode: the conversation just does not survive a reload */ }
  }

  function api(path, options) {
    options = options || {};
    var init = { method: options.method || "GET", headers: { "Accept": "application/json" } };
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(BASE + path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var err = new Error(body.message || ("HTTP " + r.status));
          err.status = r.status;
          throw err;
        }
        return body;
      });
    });
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  var ROLE_LABEL = { bot: null, agent: "人工客服", system: null, shopper: null };

  // One bubble; text always goes through textContent.
  function bubble(role, text, author) {
    var node = el("div", { class: "kefu-msg kefu-" + role });
    var label = ROLE_LABEL[role];
    if (label) node.appendChild(el("span", { class: "kefu-author" }, author ? label + " " + author : label));
    node.appendChild(el("span", { class: "kefu-text" }, text));
    log.insertBefore(node, typing.parentNode === log ? typing : null);
    scrollDown();
    return node;
  }

  function suggestionChips(after, suggestions) {
    if (!suggestions || !suggestions.length) return;
    var row = el("div", { class: "kefu-suggestions", role: "group", "aria-label": "您可能想问" });
    suggestions.forEach(function (s) {
      var chip = el("button", { type: "button", class: "kefu-chip" }, s.title || s.intent);
      chip.addEventListener("click", function () { ask(s.title || s.intent); });
      row.appendChild(chip);
    });
    after.insertAdjacentElement("afterend", row);
    scrollDown();
  }

  function markSeen(id) {
    if (!id) return;
    shown[id] = true;
    if (id > lastId) lastId = id;
  }

  // A message from the history, the event stream or polling; each id is shown once.
  function showMessage(m) {
    if (!m || !m.id || shown[m.id]) return;
    if (m.role === "shopper") {
      for (var i = 0; i < pending.length; i++) {
        if (pending[i].text === m.text) {  // our own message, sent from this page
          pending[i].node.dataset.id = m.id;
          pending.splice(i, 1);
          markSeen(m.id);
          return;
        }
      }
    }
    markSeen(m.id);
    var node = bubble(m.role, m.text, m.author);
    node.dataset.id = m.id;
    if (m.role === "agent") {
      setStatus("人工客服" + (m.author ? " " + m.author : "") + " 正在为您服务", "agent");
    } else if (m.role === "system") {
      setStatus(null);
    }
    if (m.role !== "shopper" && panel.hidden) {
      unread += 1;
      badge.textContent = String(unread);
      badge.hidden = false;
      launcher.setAttribute("aria-label", "打开在线客服（" + unread + " 条未读消息）");
    }
  }

  function setStatus(text, kind) {
    status.textContent = text || "";
    status.hidden = !text;
    status.className = "kefu-status" + (kind ? " kefu-status-" + kind : "");
  }

  function queueStatus(handoff) {
    if (!handoff) return;
    if (handoff.status === "assigned") {
      setStatus("人工客服已接入，正在为您服务", "agent");
    } else if (handoff.position > 1) {
      setStatus("正在排队等待人工客服，您前面还有 " + (handoff.position - 1) + " 位", "queue");
    } else {
      setStatus("正在排队等待人工客服，您是下一位", "queue");
    }
  }

  function setTyping(on) {
    if (on) {
      log.appendChild(typing);
      typing.hidden = false;
      scrollDown();
    } else {
      typing.hidden = true;
    }
  }

  // ---- talking to the server ---------------------------------------------------------------
  function ask(text, retried) {
    text = (text || "").trim();
    if (!text || busy) return Promise.resolve();
    if (text.length > MAX_CHARS) text = text.slice(0, MAX_CHARS);
    busy = true;
    send.disabled = true;
    var mine = retried ? retried : { text: text, node: bubble("shopper", text) };
    if (!retried) pending.push(mine);
    setTyping(true);
    return api("/v1/chat", { method: "POST", body: { session_id: sessionId || undefined, message: text } })
      .then(function (reply) {
        var fresh = reply.session_id !== sessionId;
        sessionId = reply.session_id;
        write(localStorage, SESSION_KEY, sessionId);
        if (reply.reply != null) {
          // reply.message_id is the bot's message; ours came just before it.
          settle(mine, null);
          var node = log.querySelector('[data-id="' + reply.message_id + '"]');
          if (!node) {  // (the event stream may have brought it first)
            markSeen(reply.message_id);
            node = bubble("bot", reply.reply);
            node.dataset.id = reply.message_id;
          }
          suggestionChips(node, reply.suggestions);
        } else {
          settle(mine, reply.message_id);  // a person has the chat: the id is our message's
        }
        if (reply.handoff) queueStatus(reply.handoff);
        if (fresh) listen();
      })
      .catch(function (err) {
        if (err.status === 404 && sessionId && !retried) {  // the session expired: start a new one
          sessionId = null;
          write(localStorage, SESSION_KEY, null);
          stopListening();
          busy = false;
          return ask(text, mine);
        }
        settle(mine, null);
        bubble("error", err.status ? err.message : "网络开小差了，请稍后再试～");
      })
      .then(function () {
        busy = false;
        send.disabled = false;
        setTyping(false);
      });
  }

  function settle(mine, id) {
    var at = pending.indexOf(mine);
    if (at >= 0) pending.splice(at, 1);
    if (id) {
      mine.node.dataset.id = id;
      markSeen(id);
    }
  }

  function catchUp() {
    if (!sessionId) return Promise.resolve();
    return api("/v1/chat/" + encodeURIComponent(sessionId) + "/messages?after=" + lastId)
      .then(function (body) { (body.messages || []).forEach(showMessage); });
  }

  function listen() {
    stopListening();
    if (!sessionId) return;
    if (!window.EventSource || sseFailures >= 3) return poll();
    events = new EventSource(BASE + "/v1/chat/" + encodeURIComponent(sessionId) + "/events");
    events.addEventListener("ready", function () {
      sseFailures = 0;
      catchUp().catch(function () {});  // whatever arrived while (re)connecting
    });
    events.addEventListener("message", function (e) {
      try { showMessage(JSON.parse(e.data).message); } catch (err) { /* not for us */ }
    });
    events.onerror = function () {
      sseFailures += 1;
      if (events.readyState === EventSource.CLOSED || sseFailures >= 3) {
        stopListening();
        poll();
      }
    };
  }

  function poll() {
    if (pollTimer || !sessionId) return;
    pollTimer = setInterval(function () {
      catchUp().catch(function (err) {
        if (err.status === 404) stopListening();
      });
    }, POLL_MS);
  }

  function stopListening() {
    if (events) { events.close(); events = null; }
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function restore() {
    if (!sessionId) return Promise.resolve();
    return api("/v1/chat/" + encodeURIComponent(sessionId) + "/messages")
      .then(function (body) {
        var msgs = body.messages || [];
        msgs.forEach(showMessage);
        unread = 0;
        badge.hidden = true;
        restoreStatus(msgs);
        listen();
      })
      .catch(function (err) {
        if (err.status === 404) {
          sessionId = null;
          write(localStorage, SESSION_KEY, null);
        }
      });
  }

  // After a reload: is a person on the way, or already in the chat?
  function restoreStatus(msgs) {
    for (var i = msgs.length - 1; i >= 0; i--) {
      var m = msgs[i];
      if (m.role === "system") return setStatus(null);
      if (m.role === "agent") return setStatus("人工客服" + (m.author ? " " + m.author : "") + " 正在为您服务", "agent");
      if (m.role === "bot") {
        if (m.intent && m.intent.indexOf("human.") === 0) setStatus("正在排队等待人工客服", "queue");
        return;
      }
    }
  }

  function applyConfig(cfg) {
    config = cfg;
    title.textContent = (cfg.assistant_name || "在线客服") + (cfg.shop_name ? " · " + cfg.shop_name : "");
    greeting.textContent = cfg.greeting;
    quick.textContent = "";
    (cfg.quick_replies || []).forEach(function (q) {
      var chip = el("button", { type: "button", class: "kefu-chip", "aria-label": q.label + "：" + q.message },
                    q.label);
      chip.addEventListener("click", function () { ask(q.message); });
      quick.appendChild(chip);
    });
    quick.appendChild(humanBtn);
    if (!panel.hidden) greeting.hidden = false;
  }

  // ---- opening and closing ---------------------------------------------------------------
  function openPanel() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.classList.add("kefu-launcher-open");
    if (config) greeting.hidden = false;
    unread = 0;
    badge.hidden = true;
    launcher.setAttribute("aria-label", "打开在线客服");
    write(sessionStorage, OPEN_KEY, "1");
    scrollDown();
    input.focus();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.classList.remove("kefu-launcher-open");
    write(sessionStorage, OPEN_KEY, null);
    launcher.focus();
  }

  humanBtn.addEventListener("click", function () { ask((config && config.handoff_message) || "转人工"); });
  launcher.addEventListener("click", function () {
    if (panel.hidden) openPanel(); else closePanel();
  });
  closeBtn.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      e.preventDefault();
      closePanel();
    }
  });
  input.addEventListener("keydown", function (e) {
    // Enter sends, Shift+Enter breaks the line; never while a Chinese IME is composing.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : submit();
    }
  });
  function submit(e) {
    if (e) e.preventDefault();
    if (busy) return;
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    ask(text);
  }
  form.addEventListener("submit", submit);

  // ---- start -----------------------------------------------------------------------------
  function start() {
    document.body.appendChild(host);
    api("/v1/widget").then(applyConfig).catch(function () {
      applyConfig({ greeting: "亲，您好～有什么可以帮您？", quick_replies: [], handoff_message: "转人工" });
    });
    restore();
    if (data.open === "true" || read(sessionStorage, OPEN_KEY)) openPanel();
  }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
