/*
 * kefu chat widget. One tag on any page of the shop:
 *
 *   <script src="https://kefu.example.com/static/kefu-widget.js" defer
 *           data-endpoint="https://kefu.example.com" data-open="false"></script>
 *
 * data-endpoint  base URL of the kefu server (default: the origin this script was loaded from)
 * data-open      "true" opens the chat window at once
 * data-accent    main colour (CSS colour, default #0958d9; white text sits on it: keep 4.5:1 with white)
 * data-position  "right" (default) or "left": the corner of the launcher and the window
 * data-offset-bottom  the launcher's distance from the bottom in pixels, a number (default 20, and 76
 *                on screens up to 768px wide, above a shop's bottom buy bar of up to 64px)
 * data-launcher  "full" (default: icon and 在线客服) or "compact" (the icon alone, 52x52)
 *
 * A value it does not understand is ignored with a warning in the console: the widget still shows.
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
  var busy = false;            // a message is on its way to the server
  var outbox = [];            // messages written meanwhile, sent next in order
  var restored = false;       // the conversation has been reloaded from the server
  var restoring = false;      // showing the history after a reload (nothing to ask the shopper again)
  var handoff = null;         // the chat's open handoff as the shopper sees it {id, status, position, agent}
  var servedBy = null;        // the agent last named to the shopper (the join is told once per agent)
  var uploading = null;       // the bubble of a picture on its way {node}

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

  // Icons as SVG, so that they do not depend on an emoji font: one path, in the text's colour.
  function icon(cls, d) {
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", cls);
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "currentColor");
    path.setAttribute("fill-rule", "evenodd");
    svg.appendChild(path);
    return svg;
  }

  // A speech bubble (the launcher's icon).
  function chatIcon() {
    return icon("kefu-launcher-icon", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"
                + "M7 10.5a1.5 1.5 0 1 0 0 .01M12 10.5a1.5 1.5 0 1 0 0 .01M17 10.5a1.5 1.5 0 1 0 0 .01");
  }

  // A picture frame (the image button's icon).
  function pictureIcon() {
    return icon("kefu-attach-icon", "M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm1 2v9.5l4-4 3 3 "
                + "3.5-3.5L19 15.5V7H5zm4.5 1.5a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3z");
  }

  var host = el("div", { id: "kefu-widget" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  // Shown once the stylesheet has loaded and the shop's words have come (GET /v1/widget): every
  // label is the shop's, none is written here.
  var wrap = el("div", { class: "kefu", hidden: "" });
  var css = el("link", { rel: "stylesheet", href: BASE + "/static/kefu-widget.css" });
  var styled = false;
  function reveal() { wrap.hidden = !(styled && config); }
  css.addEventListener("load", function () { styled = true; reveal(); });
  css.addEventListener("error", function () { styled = true; reveal(); });
  // On the widget's own box, whose style sheet sets the default: an inline value there wins (on the host
  // it was shadowed by that default).
  if (data.accent) { wrap.style.setProperty("--kefu-accent", data.accent); wrap.style.setProperty("--kefu-accent-dark", data.accent); }
  placeLauncher(wrap, data);

  var launcher = el("button", { type: "button", class: "kefu-launcher", "aria-expanded": "false",
                                "aria-controls": "kefu-panel" });
  launcher.appendChild(chatIcon());
  var launcherText = el("span", { class: "kefu-launcher-text" });
  launcher.appendChild(launcherText);
  var badge = el("span", { class: "kefu-badge", hidden: "" });
  launcher.appendChild(badge);

  var panel = el("section", { id: "kefu-panel", class: "kefu-panel", role: "dialog", "aria-modal": "false",
                              "aria-labelledby": "kefu-title", hidden: "" });
  var header = el("header", { class: "kefu-header" });
  var heading = el("div", { class: "kefu-heading" });
  var title = el("h2", { id: "kefu-title", class: "kefu-title" });
  var subtitle = el("p", { class: "kefu-subtitle" });
  heading.appendChild(title);
  heading.appendChild(subtitle);
  var closeBtn = el("button", { type: "button", class: "kefu-close" }, "×");
  header.appendChild(heading);
  header.appendChild(closeBtn);

  var status = el("div", { class: "kefu-status", role: "status", "aria-live": "polite", hidden: "" });
  var log = el("div", { class: "kefu-log", role: "log", "aria-live": "polite", tabindex: "0" });
  var greeting = el("div", { class: "kefu-msg kefu-bot kefu-greeting", hidden: "" });
  log.appendChild(greeting);
  var typing = el("div", { class: "kefu-typing", role: "status", hidden: "" });
  for (var i = 0; i < 3; i++) typing.appendChild(el("span", { class: "kefu-dot", "aria-hidden": "true" }));

  var quick = el("div", { class: "kefu-quick", role: "group" });
  var humanBtn = el("button", { type: "button", class: "kefu-chip kefu-human" });

  var form = el("form", { class: "kefu-form" });
  var input = el("textarea", { class: "kefu-input", rows: "1", maxlength: String(MAX_CHARS) });
  var send = el("button", { type: "submit", class: "kefu-send" });
  // A picture for the person who has (or will have) the chat: shown only then.
  var attach = el("button", { type: "button", class: "kefu-attach", hidden: "" });
  attach.appendChild(pictureIcon());
  var file = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp,image/gif", hidden: "",
                           tabindex: "-1", "aria-hidden": "true" });
  form.appendChild(attach);
  form.appendChild(file);
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

  // ---- where the shop puts the launcher, and how big ------------------------------------------
  // The shop's data-position, data-offset-bottom and data-launcher as classes and a CSS variable on the
  // widget's box (the style sheet does the rest); a value not understood is warned about and ignored.
  function placeLauncher(box, attrs) {
    var choices = { position: ["right", "left"], launcher: ["full", "compact"] };
    Object.keys(choices).forEach(function (name) {
      var value = attrs[name];
      if (value == null || value === "") return;
      value = value.trim().toLowerCase();
      if (choices[name].indexOf(value) < 0) return ignored(name, attrs[name], choices[name].join(" / "));
      box.classList.add("kefu-" + name + "-" + value);
    });
    var offset = attrs.offsetBottom;
    if (offset == null || offset === "") return;
    var px = /^\s*\d+(\.\d+)?\s*(px)?\s*$/i.test(offset) ? parseFloat(offset) : NaN;
    if (!(px >= 0)) return ignored("offset-bottom", offset, "a number of pixels, e.g. 80");
    box.style.setProperty("--kefu-bottom", px + "px");
  }

  function ignored(name, value, wanted) {
    if (window.console) console.warn("kefu-widget: data-" + name + '="' + value + '" ignored (' + wanted + ")");
  }

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

  // One of the shop's words (config.texts), its {placeholders} filled.
  function T(key, values) {
    var text = (config && config.texts && config.texts[key]) || "";
    return text.replace(/\{(\w+)\}/g, function (all, name) {
      return values && values[name] != null ? String(values[name]) : all;
    });
  }

  function serving(author) {
    return T("agent_serving", { author: author ? " " + author + " " : "" });
  }

  function imageUrl(id) {
    return BASE + "/v1/chat/" + encodeURIComponent(sessionId) + "/images/" + encodeURIComponent(id);
  }

  // A picture the shopper sent, in its bubble (scaled down; the server re-encoded it).
  function showPicture(node, image) {
    node.textContent = "";
    node.classList.add("kefu-picture");
    var img = el("img", { src: imageUrl(image.id), alt: T("image_alt"), loading: "lazy" });
    if (image.width && image.height) { img.width = image.width; img.height = image.height; }
    img.addEventListener("load", scrollDown);
    node.appendChild(img);
  }

  // One bubble; text always goes through textContent.
  function bubble(role, text, author) {
    var node = el("div", { class: "kefu-msg kefu-" + role });
    var label = role === "agent" ? T("agent") : null;
    if (label) node.appendChild(el("span", { class: "kefu-author" }, author ? label + " " + author : label));
    node.appendChild(el("span", { class: "kefu-text" }, text));
    log.insertBefore(node, typing.parentNode === log ? typing : null);
    scrollDown();
    return node;
  }

  function suggestionChips(after, suggestions) {
    if (!suggestions || !suggestions.length) return;
    var row = el("div", { class: "kefu-suggestions", role: "group", "aria-label": T("suggestions") });
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
    if (m.role === "shopper" && m.image && uploading) {  // our picture, arriving before its upload's answer
      uploading.node.dataset.id = m.id;
      markSeen(m.id);
      showPicture(uploading.node, m.image);
      uploading = null;
      return;
    }
    if (m.role === "shopper" && !m.image) {
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
    if (m.image) showPicture(node, m.image);
    if (m.role === "agent") {
      servedBy = m.author || servedBy;
      setStatus(serving(m.author), "agent");
    } else if (m.role === "system") {
      setHandoff(null);
      if (!restoring) ratingForm();
    }
    if (m.role !== "shopper" && panel.hidden) {
      unread += 1;
      badge.textContent = String(unread);
      badge.hidden = false;
      launcher.setAttribute("aria-label", T("open_unread", { count: unread }));
    }
  }

  function setStatus(text, kind) {
    status.textContent = text || "";
    status.hidden = !text;
    status.className = "kefu-status" + (kind ? " kefu-status-" + kind : "");
  }

  // The banner of a handoff {id, status, position, agent}: the place in the queue while it waits, who has
  // the chat once an agent took it (told once in the chat too, the moment it happens); null: nobody.
  function setHandoff(h) {
    handoff = h && (h.status === "waiting" || h.status === "assigned") ? h : null;
    attach.hidden = !handoff;
    if (!handoff) {
      servedBy = null;
      return setStatus(null);
    }
    if (handoff.status === "assigned") {
      var name = handoff.agent || servedBy;
      if (handoff.agent && handoff.agent !== servedBy && !restoring) {
        var note = bubble("joined", T("agent_joined_note", { author: handoff.agent }));
        note.setAttribute("role", "status");
      }
      servedBy = name;
      setStatus(name ? serving(name) : T("agent_joined"), "agent");
    } else if (handoff.position > 1) {
      setStatus(T("queue_ahead", { ahead: handoff.position - 1 }), "queue");
    } else {
      setStatus(T("queue_next"), "queue");
    }
  }

  // The chat's handoff as the server has it now (after a reload, a reconnection, and when polling).
  function refreshHandoff() {
    if (!sessionId) return Promise.resolve();
    return api("/v1/chat/" + encodeURIComponent(sessionId) + "/handoff")
      .then(function (body) { setHandoff(body.handoff); })
      .catch(function () {});
  }

  // A reply's handoff {id, status, position} (no agent's name: the banner keeps the one it has).
  function queueStatus(h) {
    if (!h) return;
    if (h.status === "assigned" && handoff && handoff.status === "assigned") return;
    setHandoff({ id: h.id, status: h.status, position: h.position, agent: null });
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
  // Every message is shown at once; the server gets them one at a time, in the order written (a
  // shopper who writes again before the reply comes is never ignored).
  function ask(text) {
    text = (text || "").trim();
    if (!text) return Promise.resolve();
    if (text.length > MAX_CHARS) text = text.slice(0, MAX_CHARS);
    var mine = { text: text, node: bubble("shopper", text) };
    pending.push(mine);
    outbox.push(mine);
    return busy ? Promise.resolve() : sendNext();
  }

  function sendNext() {
    var mine = outbox.shift();
    if (!mine) return Promise.resolve();
    busy = true;
    setTyping(true);
    return deliver(mine, false).then(function () {
      busy = false;
      setTyping(false);
      return sendNext();
    });
  }

  function deliver(mine, retried) {
    return api("/v1/chat", { method: "POST", body: { session_id: sessionId || undefined, message: mine.text } })
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
          if (reply.action === "answer") feedbackButtons(node, reply.message_id);
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
          return deliver(mine, true);
        }
        settle(mine, null);
        bubble("error", err.status ? err.message : T("network_error"));
      });
  }

  // ---- a picture for the person ------------------------------------------------------------
  function sendPicture(picked) {
    if (!picked || !sessionId || uploading) return;
    var max = config && config.image_max_bytes;
    var mb = max ? Math.round(max / 104857.6) / 10 : 0;
    if (max && picked.size > max) return bubble("error", T("image_too_large", { max_mb: mb }));
    var node = bubble("shopper", T("image_sending"));
    var mine = uploading = { node: node };
    fetch(BASE + "/v1/chat/" + encodeURIComponent(sessionId) + "/images",
          { method: "POST", body: picked, headers: { "Content-Type": "application/octet-stream",
                                                     "Accept": "application/json" } })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (!r.ok) {
            var err = new Error(body.error === "too_large" ? T("image_too_large", { max_mb: mb })
                                : body.message || ("HTTP " + r.status));
            err.status = r.status;
            throw err;
          }
          return body;
        });
      })
      .then(function (m) {
        if (uploading !== mine) return;  // (the event stream or polling brought it first)
        uploading = null;
        node.dataset.id = m.id;
        markSeen(m.id);
        showPicture(node, m.image);
      })
      .catch(function (err) {
        if (uploading === mine) uploading = null;
        node.remove();
        bubble("error", err.status ? err.message : T("network_error"));
      });
  }

  // ---- what the shopper thinks of the service ----------------------------------------------
  function failed(err) {
    bubble("error", err && err.status && err.status !== 409 ? err.message : T("network_error"));
  }

  // 有帮助 / 没帮助 under an answer of the bot: one tap, and another tap changes it.
  function feedbackButtons(node, messageId) {
    var row = el("div", { class: "kefu-feedback", role: "group", "aria-label": T("feedback") });
    [[true, "helpful"], [false, "unhelpful"]].forEach(function (choice) {
      var b = el("button", { type: "button", class: "kefu-vote", "aria-pressed": "false" }, T(choice[1]));
      b.addEventListener("click", function () {
        api("/v1/chat/" + encodeURIComponent(sessionId) + "/feedback",
            { method: "POST", body: { message_id: messageId, helpful: choice[0] } })
          .then(function () {
            Array.prototype.forEach.call(row.children, function (other) {
              other.setAttribute("aria-pressed", other === b ? "true" : "false");
            });
          })
          .catch(failed);
      });
      row.appendChild(b);
    });
    node.insertAdjacentElement("afterend", row);
    scrollDown();
  }

  // After an agent ended the chat: a rating of the service, 1 to 5, with an optional comment.
  function ratingForm() {
    if (!sessionId) return;
    var box = el("form", { class: "kefu-rating", "aria-label": T("rate_title") });
    box.appendChild(el("p", { class: "kefu-rating-title" }, T("rate_title")));
    var scores = el("div", { class: "kefu-scores", role: "group", "aria-label": T("rate_title") });
    var score = 0;
    var comment = el("textarea", { class: "kefu-input kefu-comment", rows: "2", maxlength: "2000",
                                   "aria-label": T("rate_comment"), placeholder: T("rate_comment") });
    var submitRating = el("button", { type: "submit", class: "kefu-send", disabled: "" }, T("rate_send"));
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = el("button", { type: "button", class: "kefu-score", "aria-pressed": "false" }, T("rate_" + n));
      b.addEventListener("click", function () {
        score = n;
        Array.prototype.forEach.call(scores.children, function (other) {
          other.setAttribute("aria-pressed", other === b ? "true" : "false");
        });
        submitRating.disabled = false;
      });
      scores.appendChild(b);
    });
    box.appendChild(scores);
    box.appendChild(comment);
    box.appendChild(submitRating);
    box.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!score) return;
      submitRating.disabled = true;
      var body = { score: score };
      if (comment.value.trim()) body.comment = comment.value.trim();
      api("/v1/chat/" + encodeURIComponent(sessionId) + "/rating", { method: "POST", body: body })
        .then(function () {
          box.replaceWith(el("p", { class: "kefu-msg kefu-note", role: "status" }, T("rate_thanks")));
          input.focus();  // the form and its button are gone: back to the message box
        })
        .catch(function (err) {
          if (err.status === 409) {  // rated already (another tab)
            box.remove();
            return input.focus();
          }
          submitRating.disabled = false;
          failed(err);
        });
    });
    log.insertBefore(box, typing.parentNode === log ? typing : null);
    scrollDown();
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
      refreshHandoff();                 // and where the chat stands (a read that failed before, too)
    });
    events.addEventListener("handoff", function (e) {
      try { setHandoff(JSON.parse(e.data).handoff); } catch (err) { /* not for us */ }
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
      if (handoff) refreshHandoff();  // the place in the queue, an agent who took the chat
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
        restoring = true;
        msgs.forEach(showMessage);
        restoring = false;
        unread = 0;
        badge.hidden = true;
        restoreStatus(msgs);
        restoring = true;
        return refreshHandoff().then(function () {
          restoring = false;
          listen();
        });
      })
      .catch(function (err) {
        if (err.status === 404) {
          sessionId = null;
          write(localStorage, SESSION_KEY, null);
        }
      });
  }

  // After a reload, until the server says where the chat stands (refreshHandoff): is a person on the
  // way, or already in the chat?
  function restoreStatus(msgs) {
    for (var i = msgs.length - 1; i >= 0; i--) {
      var m = msgs[i];
      if (m.role === "system") return setStatus(null);
      if (m.role === "agent") return setStatus(serving(m.author), "agent");
    }
  }

  function applyConfig(cfg) {
    config = cfg;
    launcher.setAttribute("aria-label", T("open"));
    launcherText.textContent = T("launcher");
    badge.setAttribute("aria-label", T("unread"));
    title.textContent = (cfg.assistant_name || T("title")) + (cfg.shop_name ? " · " + cfg.shop_name : "");
    subtitle.textContent = T("subtitle");
    closeBtn.setAttribute("aria-label", T("close"));
    log.setAttribute("aria-label", T("log"));
    typing.setAttribute("aria-label", T("typing"));
    quick.setAttribute("aria-label", T("quick"));
    humanBtn.setAttribute("aria-label", T("human_label"));
    humanBtn.textContent = T("human");
    form.setAttribute("aria-label", T("form"));
    input.setAttribute("aria-label", T("input"));
    input.setAttribute("placeholder", T("placeholder"));
    send.setAttribute("aria-label", T("send"));
    attach.setAttribute("aria-label", T("image"));
    attach.setAttribute("title", T("image"));
    send.textContent = T("send");
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
    reveal();
    if (!restored) {  // the conversation is shown once its labels are known
      restored = true;
      restore();
    }
  }

  // ---- opening and closing ---------------------------------------------------------------
  function openPanel() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.classList.add("kefu-launcher-open");
    if (config) greeting.hidden = false;
    unread = 0;
    badge.hidden = true;
    launcher.setAttribute("aria-label", T("open"));
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

  humanBtn.addEventListener("click", function () { if (config) ask(config.handoff_message); });
  attach.addEventListener("click", function () { file.click(); });
  file.addEventListener("change", function () {
    var picked = file.files && file.files[0];
    file.value = "";  // the same picture may be chosen again
    sendPicture(picked);
  });
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
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    ask(text);
  }
  form.addEventListener("submit", submit);

  // ---- start -----------------------------------------------------------------------------
  // The widget stays hidden until the server has given the shop's words; a server that cannot be
  // reached is asked again, less and less often.
  function loadConfig(tries) {
    api("/v1/widget").then(applyConfig).catch(function () {
      setTimeout(function () { loadConfig(tries + 1); }, Math.min(60000, 2000 * Math.pow(2, tries)));
    });
  }

  // For the shop's own page: the shopper's session id, to report an order (POST /v1/orders).
  window.kefu = window.kefu || {};
  window.kefu.sessionId = function () { return sessionId; };

  function start() {
    document.body.appendChild(host);
    loadConfig(0);
    if (data.open === "true" || read(sessionStorage, OPEN_KEY)) openPanel();
  }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
