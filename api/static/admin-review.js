/*
 * kefu manager's console, 未识别问题: the review queue. Groups of what the bot did not know, biggest
 * first; a group, or the messages ticked in it, is added to an entry, made a new entry, marked
 * "always a person" or dismissed, and then leaves the list.
 */
(function (K) {
  "use strict";

  var $ = K.$, el = K.el, api = K.api, say = K.say, describe = K.describe, when = K.when, pct = K.pct;
  var titleOf = K.titleOf, confirmBox = K.confirmBox, notice = K.notice;

  // Why a message is in the queue, in plain words, and the colour of its kind.
  var SOURCES = {
    low_confidence: ["机器人没把握，转了人工", "handoff"],
    out_of_scope: ["超出机器人会答的范围，转了人工", "handoff"],
    repeated_fallback: ["多次没听懂，转了人工", "handoff"],
    requested: ["机器人猜顾客要找人工（没把握）", "handoff"],
    complaint: ["机器人猜是投诉（没把握）", "handoff"],
    problem: ["机器人猜是商品问题（没把握）", "handoff"],
    clarify: ["请顾客换个说法", "turn"],
    suggest: ["给顾客列了几个猜测的问题", "turn"],
    pair: ["拿不准是哪个问题，两条答案都回了", "turn"],
    relabelled: ["客服改了问题类型", "label"]
  };

  var groups = [];  // the clusters as last read

  function loadReview() {
    $("review-loading").hidden = groups.length > 0;
    say("review-error", "");
    return Promise.all([api("/v1/admin/review"), K.allEntries()]).then(function (res) {
      groups = res[0].clusters || [];
      renderGroups(res[1]);
    }).catch(function (err) {
      say("review-error", "未识别问题加载失败：" + describe(err));
    }).then(function () { $("review-loading").hidden = true; });
  }

  function setReviewCount() {
    var n = groups.reduce(function (sum, c) { return sum + c.size; }, 0);
    $("review-count").textContent = n ? "(" + n + ")" : "";
    $("review-empty").hidden = groups.length > 0;
  }

  function renderGroups(all) {
    var box = $("groups");
    box.textContent = "";
    groups.forEach(function (c, i) { box.appendChild(renderGroup(c, i, all)); });
    setReviewCount();
  }

  function renderGroup(c, index, all) {
    var key = "g" + index;
    var section = el("section", { class: "group", "aria-labelledby": key + "-title", "data-cluster": c.id });
    var head = el("div", { class: "group-head" });
    var first = c.messages[0] ? c.messages[0].text : "";
    head.appendChild(el("h3", { id: key + "-title" },
      c.size > 1 ? "“" + first + "” 等 " + c.size + " 条相似的问题" : "“" + first + "”"));
    if (c.messages[0]) head.appendChild(el("span", { class: "group-when" }, "最近一条：" + when(c.messages[0].at)));
    section.appendChild(head);

    if (c.suggested && c.suggested.length) {
      var near = el("ul", { class: "nearest", "aria-label": "最接近的已有问题" });
      near.appendChild(el("li", { class: "nearest-label" }, "最接近的已有问题："));
      c.suggested.forEach(function (s) {
        var li = el("li");
        li.appendChild(el("span", {}, titleOf(s.intent)));
        li.appendChild(el("span", { class: "id" }, s.intent));
        li.appendChild(el("span", { class: "pct" }, pct(s.score)));
        near.appendChild(li);
      });
      section.appendChild(near);
    }

    var list = el("ul", { class: "messages", "aria-label": "这组的消息" });
    c.messages.forEach(function (m) {
      var li = el("li");
      var label = el("label");
      // A lone message is decided whole: no box to tick.
      label.appendChild(c.size > 1 ? el("input", { type: "checkbox", "data-id": String(m.id) }) : el("span"));
      label.appendChild(el("span", { class: "msg-text" }, m.text));
      label.appendChild(el("span", { class: "group-when" }, when(m.at)));
      var meta = el("span", { class: "msg-meta" });
      var src = SOURCES[m.source] || [m.source, ""];
      meta.appendChild(el("span", { class: "source source-" + src[1] }, src[0]));
      if (m.agent_label) meta.appendChild(el("span", {}, "客服标为：" + titleOf(m.agent_label)));
      else if (m.bot_guess) meta.appendChild(el("span", {}, "机器人猜：" + titleOf(m.bot_guess)));
      label.appendChild(meta);
      li.appendChild(label);
      list.appendChild(li);
    });
    section.appendChild(list);

    var selection = el("p", { class: "selection", "aria-live": "polite" });
    section.appendChild(selection);
    function chosen() {
      return Array.prototype.map.call(list.querySelectorAll("input:checked"), function (b) { return Number(b.dataset.id); });
    }
    function showSelection() {
      var n = chosen().length;
      selection.textContent = c.size === 1 ? "" : n && n < c.size ? "已选 " + n + " 条：下面的操作只处理选中的消息。" :
        "操作对整组 " + c.size + " 条消息生效；勾选消息可以只处理其中几条。";
    }
    list.addEventListener("change", showSelection);
    showSelection();

    var actions = el("div", { class: "group-actions" });
    var form = el("div", { class: "group-form", hidden: "" });
    var error = el("p", { class: "error", role: "alert" });
    var buttons = [
      ["加入已有问题", "secondary", function () { addForm(c, key, form, all, chosen, error); }],
      ["新建问题", "secondary", function () { newForm(c, key, form, chosen, error); }],
      ["总是转人工", "secondary", function () {
        var n = count(chosen(), c);
        confirmBox("这 " + n + " 条消息会成为「" + titleOf("human.other") + "」的例句：重新训练后，类似的问题会直接转人工。",
                   "总是转人工").then(function (ok) { if (ok) decide(c, { action: "human" }, chosen(), section, error); });
      }],
      ["忽略", "secondary", function () {
        var n = count(chosen(), c);
        confirmBox("忽略这 " + n + " 条消息？它们会离开这个列表，不会教给机器人。", "忽略")
          .then(function (ok) { if (ok) decide(c, { action: "dismiss" }, chosen(), section, error); });
      }]
    ];
    buttons.forEach(function (b) {
      var btn = el("button", { type: "button", class: b[1] }, b[0]);
      btn.addEventListener("click", b[2]);
      actions.appendChild(btn);
    });
    section.appendChild(actions);
    section.appendChild(form);
    section.appendChild(error);
    return section;
  }

  function count(ids, c) { return ids.length && ids.length < c.size ? ids.length : c.size; }

  function closeForm(form) {
    form.hidden = true;
    form.textContent = "";
  }

  function formButtons(form, okLabel, onOk) {
    var row = el("div", { class: "row" });
    var ok = el("button", { type: "submit", class: "primary" }, okLabel);
    var cancel = el("button", { type: "button", class: "secondary" }, "取消");
    cancel.addEventListener("click", function () { closeForm(form); });
    row.appendChild(ok);
    row.appendChild(cancel);
    form.appendChild(row);
    form.onsubmit = function (e) { e.preventDefault(); onOk(ok); };
  }

  function addForm(c, key, box, all, chosen, error) {
    box.textContent = "";
    var form = el("form", { class: "group-form-inner" });
    var id = key + "-target";
    form.appendChild(el("label", { for: id }, "加入到哪个问题"));
    var select = el("select", { id: id });
    all.forEach(function (e) {
      select.appendChild(el("option", { value: e.intent }, (e.title || e.intent) + "（" + e.intent + "）"));
    });
    // The nearest entry a shopper could be answered from; "always a person" has its own button.
    var nearest = (c.suggested || []).filter(function (s) { return s.intent.indexOf("human.") !== 0; })[0] ||
      (c.suggested || [])[0];
    if (nearest) select.value = nearest.intent;
    form.appendChild(select);
    formButtons(form, "加入", function () {
      decide(c, { action: "add_examples", intent: select.value }, chosen(), box.parentNode, error);
    });
    box.appendChild(form);
    box.hidden = false;
    select.focus();
  }

  function newForm(c, key, box, chosen, error) {
    box.textContent = "";
    var form = el("form", { class: "group-form-inner", novalidate: "" });
    function field(name, label, input, hint) {
      var wrap = el("div", { class: "field" });
      input.id = key + "-new-" + name;
      wrap.appendChild(el("label", { for: input.id }, label));
      wrap.appendChild(input);
      if (hint) {
        input.setAttribute("aria-describedby", input.id + "-hint");
        wrap.appendChild(el("p", { class: "hint", id: input.id + "-hint" }, hint));
      }
      form.appendChild(wrap);
      return input;
    }
    var intent = field("intent", "问题编号", el("input", { type: "text", maxlength: "64", autocomplete: "off",
      spellcheck: "false", placeholder: "product.authentic" }), "小写英文，格式为「分类.名称」，如 product.authentic");
    var title = field("title", "标题", el("input", { type: "text", maxlength: "50", placeholder: "如：是不是正品" }));
    var answer = field("answer", "回答", el("textarea", { rows: "3", maxlength: "2000" }),
      "可以用 {shipping.cutoff_time} 这样的占位符引用店铺信息。");
    var preview = el("p", { class: "preview", "aria-live": "polite" });
    var pv = el("div", { class: "preview-box" });
    pv.appendChild(el("h3", {}, "顾客看到的回答（预览）"));
    pv.appendChild(preview);
    form.appendChild(pv);
    answer.addEventListener("input", function () {
      K.shopFacts().then(function () { K.renderTemplate(preview, answer.value); }).catch(function () {});
    });
    formButtons(form, "创建并加入", function () {
      decide(c, { action: "new_entry", intent: intent.value.trim(), title: title.value.trim(), answer: answer.value },
             chosen(), box.parentNode, error);
    });
    box.appendChild(form);
    box.hidden = false;
    intent.focus();
  }

  function decide(c, body, ids, section, error) {
    error.textContent = "";
    if (ids.length && ids.length < c.size) body.message_ids = ids;
    var partial = !!body.message_ids;
    var buttons = section.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    api("/v1/admin/review/" + encodeURIComponent(c.id), { method: "POST", body: body }).then(function (out) {
      groups = groups.filter(function (g) { return g.id !== c.id; });
      section.parentNode.removeChild(section);
      setReviewCount();
      decided(out, body);
      if (body.action === "new_entry" || body.action === "add_examples") K.kb.load();
      if (partial) loadReview();  // the rest of the group is a group of its own now
    }).catch(function (err) {
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      if (err.status === 404) {
        notice("review-notice", "这组问题刚刚有变化（来了新消息，或别人已经处理了），已重新加载，请再看一下。");
        loadReview();
      } else {
        error.textContent = "操作没有成功：" + describe(err, body.answer);
      }
    });
  }

  function decided(out, body) {
    var n = out.message_ids.length;
    var text = {
      add_examples: "已把 " + n + " 条消息加入「" + titleOf(out.intent) + "」（" + out.intent + "）。",
      new_entry: "已新建问题「" + (body.title || out.intent) + "」（" + out.intent + "），" + n + " 条消息成为它的例句，回答已经生效。",
      human: "已把 " + n + " 条消息标记为总是转人工。",
      dismiss: "已忽略 " + n + " 条消息。"
    }[out.action] || "已处理。";
    var box = notice("review-notice", text + (out.retrain ? "需要重新训练模型，机器人才能学会这些问法。" : ""));
    if (out.retrain) {
      var go = el("button", { type: "button", class: "primary" }, "去训练");
      go.addEventListener("click", function () { K.tabs.select("tab-train", true); });
      var row = el("div", { class: "row" });
      row.appendChild(go);
      box.appendChild(row);
    }
    box.focus();
  }


  // Coming back to the queue reads it again, unless the manager is halfway through a decision.
  function show() {
    if (!document.querySelector(".group-form:not([hidden])")) loadReview();
  }

  function init() {
    $("review-refresh").addEventListener("click", function () { $("review-notice").hidden = true; loadReview(); });
  }

  K.review = { init: init, show: show, load: loadReview };
})(window.kefuAdmin);
