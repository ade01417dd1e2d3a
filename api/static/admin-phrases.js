/*
 * kefu manager's console, 知识库 › 快捷短语: the agents' canned replies (data/phrases.yml), each a
 * title, keywords and a text with the shop's placeholders, edited as a list and saved over the
 * version read (GET and PUT /v1/admin/phrases).
 */
(function (K) {
  "use strict";

  var $ = K.$, el = K.el, api = K.api, say = K.say, describe = K.describe;
  var version = null;   // the file's version the rows were read at
  var count = 0;        // rows made so far: ids for their labels

  function load() {
    say("phrases-error", "");
    say("phrases-status", "");
    return api("/v1/admin/phrases").then(function (body) {
      version = body.version;
      render(body.data || []);
    }).catch(function (err) { say("phrases-error", "快捷短语加载失败：" + describe(err)); });
  }

  function render(list) {
    $("phrase-rows").textContent = "";
    list.forEach(addRow);
  }

  function field(li, label, input) {
    var n = ++count;
    input.id = "phrase-" + n;
    var box = el("div", { class: "field" });
    box.appendChild(el("label", { for: input.id }, label));
    box.appendChild(input);
    li.appendChild(box);
    return input;
  }

  function addRow(p) {
    p = p || { title: "", keywords: [], text: "" };
    var li = el("li", { class: "phrase-row" });
    var title = field(li, "标题", el("input", { type: "text", maxlength: "30", "data-role": "title" }));
    title.value = p.title;
    var words = field(li, "关键词（用逗号分开）", el("input", { type: "text", maxlength: "230", "data-role": "keywords" }));
    words.value = (p.keywords || []).join("，");
    var text = field(li, "内容", el("textarea", { rows: "2", maxlength: "500", "data-role": "text" }));
    text.value = p.text;
    var remove = el("button", { type: "button", class: "secondary" }, "删除");
    remove.addEventListener("click", function () {
      var next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      say("phrases-status", "已删除一条，保存后生效");
      if (next) next.querySelector("input").focus(); else $("phrase-add").focus();
    });
    li.appendChild(remove);
    $("phrase-rows").appendChild(li);
    return li;
  }

  function collect() {
    return Array.prototype.map.call($("phrase-rows").children, function (li) {
      function value(role) { return li.querySelector('[data-role="' + role + '"]').value.trim(); }
      return { title: value("title"), text: value("text"),
               keywords: value("keywords").split(/[,，、\s]+/).filter(Boolean) };
    });
  }

  function save(e) {
    e.preventDefault();
    say("phrases-error", "");
    say("phrases-status", "");
    api("/v1/admin/phrases", { method: "PUT", body: { phrases: collect(), version: version } }).then(function (body) {
      version = body.version;
      render(body.data || []);
      say("phrases-status", "已保存，客服下次搜索即可用到");
    }).catch(function (err) {
      say("phrases-error", err.status === 409 ? "别人刚刚也修改了快捷短语，请刷新本页后再改。" : "保存失败：" + describe(err));
    });
  }

  function init() {
    $("phrases-form").addEventListener("submit", save);
    $("phrase-add").addEventListener("click", function () { addRow().querySelector("input").focus(); });
  }

  K.phrases = { init: init, show: load };
})(window.kefuAdmin);
