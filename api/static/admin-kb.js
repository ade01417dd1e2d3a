/*
 * kefu manager's console, 知识库 › 问题和回答: search the entries, open one to edit its title, answer
 * template (with the answer as a shopper reads it) and examples, one per line; create a new one. A
 * save over someone else's (409) keeps what the manager typed and offers theirs beside it.
 */
(function (K) {
  "use strict";

  var $ = K.$, el = K.el, api = K.api, say = K.say, describe = K.describe, lines = K.lines;
  var titleOf = K.titleOf, confirmBox = K.confirmBox;

  var entries = [];      // the list as last read: {intent, title, family, examples, answer, match}
  var entryMode = null;  // "edit" | "new" | null
  var loaded = null;     // the entry as last read or saved (edit mode)
  var theirs = null;     // the entry someone else saved (after a 409)
  var searchTimer = null;
  var searchSeq = 0;     // only the newest search's answer is shown

  function loadEntries(query) {
    var q = query == null ? $("kb-search").value.trim() : query;
    var seq = (searchSeq += 1);
    return api("/v1/admin/kb/entries" + (q ? "?q=" + encodeURIComponent(q) : "")).then(function (body) {
      if (seq !== searchSeq) return;
      entries = body.entries || [];
      K.learnTitles(entries);
      renderEntryList(q);
    }).catch(function (err) {
      if (seq === searchSeq) say("entry-error", describe(err));
    });
  }

  function renderEntryList(q) {
    var list = $("entry-list");
    var focused = document.activeElement && list.contains(document.activeElement)
      ? document.activeElement.dataset.intent : null;
    list.textContent = "";
    entries.forEach(function (e) {
      var li = el("li");
      var btn = el("button", { type: "button", class: "entry-item", "data-intent": e.intent });
      if (loaded && entryMode === "edit" && loaded.intent === e.intent) btn.setAttribute("aria-current", "true");
      var top = el("span", { class: "entry-item-top" });
      top.appendChild(el("span", { class: "entry-item-title" }, e.title || e.intent));
      top.appendChild(el("span", { class: "entry-item-n" }, e.examples + " 句"));
      btn.appendChild(top);
      btn.appendChild(el("span", { class: "id" }, e.intent));
      if (e.match) btn.appendChild(el("span", { class: "entry-item-match" }, "例句：" + e.match));
      btn.addEventListener("click", function () { openEntry(e.intent); });
      li.appendChild(btn);
      list.appendChild(li);
    });
    say("kb-count", q ? "找到 " + entries.length + " 个问题" : "共 " + entries.length + " 个问题");
    var again = focused && list.querySelector('[data-intent="' + focused + '"]');
    if (again) again.focus();
  }

  function formValues() {
    return { title: $("entry-title").value.trim(), answer: $("entry-answer").value,
             examples: lines($("entry-examples").value) };
  }

  function dirty() {
    if (!entryMode) return false;
    var v = formValues();
    if (entryMode === "new") return !!(v.title || v.answer.trim() || v.examples.length || $("entry-intent").value.trim());
    return v.title !== loaded.title || v.answer.trim() !== loaded.answer.trim() ||
      v.examples.join("\n") !== loaded.examples.map(function (x) { return x.text; }).join("\n");
  }

  function leaveEntry() {
    return dirty() ? confirmBox("这个问题有还没保存的修改，放弃这些修改吗？", "放弃修改") : Promise.resolve(true);
  }

  function openEntry(intent) {
    return leaveEntry().then(function (ok) {
      if (!ok) return;
      say("entry-error", "");
      return api("/v1/admin/kb/entries/" + encodeURIComponent(intent)).then(function (e) {
        showEntry(e);
        $("entry-heading").focus();
      }).catch(function (err) { say("entry-error", "打开失败：" + describe(err)); });
    });
  }

  function showEntry(e) {
    entryMode = "edit";
    loaded = e;
    theirs = null;
    $("conflict").hidden = true;
    $("entry-placeholder").hidden = true;
    $("entry-form").hidden = false;
    $("new-id-field").hidden = true;
    $("entry-heading").textContent = e.title || e.intent;
    $("entry-id").textContent = e.intent;
    $("entry-title").value = e.title;
    $("entry-answer").value = e.answer;
    $("entry-examples").value = e.examples.map(function (x) { return x.text; }).join("\n");
    $("entry-save").textContent = "保存";
    showFollowUps(e.follow_ups || []);
    updateExampleCount();
    updatePreview();
    say("entry-status", "");
    markCurrent(e.intent);
  }

  function markCurrent(intent) {
    Array.prototype.forEach.call(document.querySelectorAll(".entry-item"), function (b) {
      if (b.dataset.intent === intent) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    });
  }

  function showFollowUps(items) {
    var box = $("follow-ups-body");
    box.textContent = "";
    $("follow-ups").hidden = items.length === 0;
    items.forEach(function (f) {
      box.appendChild(el("p", { class: "hint" }, "在问过「" + f.after.map(titleOf).join("、") + "」之后："));
      var ul = el("ul");
      f.examples.forEach(function (x) { ul.appendChild(el("li", {}, x)); });
      box.appendChild(ul);
    });
  }

  function openNew() {
    return leaveEntry().then(function (ok) {
      if (!ok) return;
      entryMode = "new";
      loaded = null;
      $("conflict").hidden = true;
      $("draft-box").hidden = true;
      $("entry-placeholder").hidden = true;
      $("entry-form").hidden = false;
      $("new-id-field").hidden = false;
      $("entry-heading").textContent = "新建问题";
      $("entry-id").textContent = "";
      ["entry-intent", "entry-title", "entry-answer", "entry-examples"].forEach(function (id) { $(id).value = ""; });
      $("entry-save").textContent = "创建";
      showFollowUps([]);
      updateExampleCount();
      updatePreview();
      say("entry-status", "");
      say("entry-error", "");
      markCurrent(null);
      $("entry-intent").focus();
    });
  }

  function updateExampleCount() {
    $("examples-count").textContent = "（共 " + lines($("entry-examples").value).length + " 句）";
  }

  // The answer as a shopper reads it: the server's rendering of the saved template, or, while the
  // manager types, the template filled here from the shop's facts (unknown placeholders marked).
  function updatePreview() {
    var template = $("entry-answer").value;
    var box = $("entry-preview");
    if (loaded && entryMode === "edit" && template.trim() === loaded.answer.trim()) {
      box.textContent = loaded.preview;
      $("preview-note").hidden = true;
      return;
    }
    K.shopFacts().then(function () {
      var unknown = K.renderTemplate(box, template);
      $("preview-note").hidden = !unknown;
      $("preview-note").textContent = unknown ? "标红的占位符在店铺信息的可编辑项里找不到，保存时会检查它是否有效。" : "";
    }).catch(function () { box.textContent = template; });
  }

  function setFormBusy(busy) {
    Array.prototype.forEach.call($("entry-form").querySelectorAll("button, input, textarea"), function (n) {
      if (n.id !== "draft-text") n.disabled = busy;
    });
  }

  function saveEntry(e) {
    if (e) e.preventDefault();
    say("entry-error", "");
    say("entry-status", "");
    var v = formValues();
    var request;
    if (entryMode === "new") {
      v.intent = $("entry-intent").value.trim();
      if (!/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/.test(v.intent)) {
        say("entry-error", "问题编号的格式不对：要用小写英文，写成「分类.名称」，如 product.authentic。");
        $("entry-intent").focus();
        return;
      }
      request = api("/v1/admin/kb/entries", { method: "POST", body: v });
    } else if (entryMode === "edit") {
      v.version = theirs ? theirs.version : loaded.version;
      request = api("/v1/admin/kb/entries/" + encodeURIComponent(loaded.intent), { method: "PUT", body: v });
    } else {
      return;
    }
    var creating = entryMode === "new";
    setFormBusy(true);
    request.then(function (saved) {
      setFormBusy(false);
      $("draft-box").hidden = true;
      showEntry(saved);
      var parts = [creating ? "已创建，回答已经生效。" : "已保存。"];
      if (saved.retrain) parts.push("例句有变化，重新训练模型后生效。");
      var moved = Object.keys(saved.moved || {});
      if (moved.length) {
        parts.push(moved.length + " 句例句原来属于其他问题，已移到这里（" + moved.map(function (x) {
          return x + " ← " + titleOf(saved.moved[x]); }).join("；") + "）。");
      }
      say("entry-status", parts.join(""));
      loadEntries();
    }).catch(function (err) {
      setFormBusy(false);
      if (err.status === 409 && !creating) return conflict();
      say("entry-error", (creating ? "创建失败：" : "保存失败：") + describe(err, v.answer));
    });
  }

  // Someone saved the entry since it was read: show what they saved; the manager's text stays.
  function conflict() {
    return api("/v1/admin/kb/entries/" + encodeURIComponent(loaded.intent)).then(function (latest) {
      theirs = latest;
      var mine = formValues();
      var theirExamples = latest.examples.map(function (x) { return x.text; });
      var extra = theirExamples.filter(function (x) { return mine.examples.indexOf(x) < 0; }).length;
      var missing = mine.examples.filter(function (x) { return theirExamples.indexOf(x) < 0; }).length;
      $("conflict-theirs").textContent = "对方保存的版本：\n标题：" + latest.title + "\n回答：" + latest.answer +
        "\n例句：" + theirExamples.length + " 句（有 " + extra + " 句你这里没有，你这里有 " + missing + " 句它没有）";
      $("conflict").hidden = false;
      $("conflict-mine").focus();
    }).catch(function (err) { say("entry-error", "保存失败：别人刚刚也保存了这个问题，读取最新版本时又出错：" + describe(err)); });
  }

  function keepMine() {
    $("conflict").hidden = true;
    saveEntry();  // over the version just read (theirs)
  }

  function takeTheirs() {
    var mine = formValues();
    $("draft-text").value = "标题：" + mine.title + "\n回答：" + mine.answer + "\n例句：\n" + mine.examples.join("\n");
    $("draft-box").hidden = false;
    showEntry(theirs);
    say("entry-status", "已载入对方保存的版本。");
  }

  function cancelEntry() {
    leaveEntry().then(function (ok) {
      if (!ok) return;
      if (entryMode === "new" || !loaded) {
        entryMode = null;
        $("entry-form").hidden = true;
        $("entry-placeholder").hidden = false;
      } else {
        showEntry(loaded);
      }
    });
  }

  // The open entry again, its preview filled anew (after the shop's facts changed), unless edited.
  function refreshOpen() {
    if (!loaded || entryMode !== "edit" || dirty()) return;
    api("/v1/admin/kb/entries/" + encodeURIComponent(loaded.intent)).then(showEntry).catch(function () {});
  }

  function show() {
    if (!entries.length) loadEntries();
  }

  function init() {
    $("search-form").addEventListener("submit", function (e) { e.preventDefault(); loadEntries(); });
    $("kb-search").addEventListener("input", function () {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(function () { loadEntries(); }, 250);
    });
    $("new-entry").addEventListener("click", openNew);
    $("entry-form").addEventListener("submit", saveEntry);
    $("entry-answer").addEventListener("input", updatePreview);
    $("entry-examples").addEventListener("input", updateExampleCount);
    $("entry-cancel").addEventListener("click", cancelEntry);
    $("conflict-mine").addEventListener("click", keepMine);
    $("conflict-reload").addEventListener("click", takeTheirs);
    $("draft-close").addEventListener("click", function () { $("draft-box").hidden = true; });
  }

  K.kb = { init: init, show: show, load: loadEntries, dirty: dirty, refreshOpen: refreshOpen };
})(window.kefuAdmin);
