/*
 * kefu manager's console: the training report's markdown as DOM (headings, paragraphs, lists,
 * tables, **bold**, `code`; images are named, not shown), every text through textContent.
 */
(function (K) {
  "use strict";

  var el = K.el;

  function renderMarkdown(box, text) {
    box.textContent = "";
    var rows = text.split(/\r?\n/);
    var i = 0;
    while (i < rows.length) {
      var line = rows[i];
      var h = /^(#{1,4})\s+(.*)$/.exec(line);
      if (!line.trim()) { i += 1; continue; }
      if (h) {
        box.appendChild(inline(el("h" + Math.min(h[1].length + 1, 5)), h[2]));
        i += 1;
      } else if (/^\s*\|/.test(line)) {
        var table = el("table");
        var body = el("tbody");
        var first = true;
        while (i < rows.length && /^\s*\|/.test(rows[i])) {
          var cells = rows[i].trim().replace(/^\||\|$/g, "").split("|");
          if (!/^[\s|:-]+$/.test(rows[i])) {
            var tr = el("tr");
            cells.forEach(function (c) { tr.appendChild(inline(el(first ? "th" : "td"), c.trim())); });
            body.appendChild(tr);
            first = false;
          }
          i += 1;
        }
        table.appendChild(body);
        var wrap = el("div", { class: "table-wrap" });
        wrap.appendChild(table);
        box.appendChild(wrap);
      } else if (/^\s*[-*]\s+/.test(line)) {
        var ul = el("ul");
        while (i < rows.length && /^\s*[-*]\s+/.test(rows[i])) {
          ul.appendChild(inline(el("li"), rows[i].replace(/^\s*[-*]\s+/, "")));
          i += 1;
        }
        box.appendChild(ul);
      } else if (/^```/.test(line)) {
        var pre = [];
        i += 1;
        while (i < rows.length && !/^```/.test(rows[i])) { pre.push(rows[i]); i += 1; }
        i += 1;
        box.appendChild(el("pre", {}, pre.join("\n")));
      } else {
        var para = [];
        while (i < rows.length && rows[i].trim() && !/^(#{1,4}\s|\s*\||\s*[-*]\s|```)/.test(rows[i])) {
          para.push(rows[i]);
          i += 1;
        }
        box.appendChild(inline(el("p"), para.join(" ")));
      }
    }
  }

  function inline(node, text) {
    // Images are files beside the model on the server: named here, not shown.
    var re = /!\[([^\]]*)\]\([^)]*\)|\*\*([^*]+)\*\*|`([^`]+)`/g;
    var last = 0;
    var m;
    while ((m = re.exec(text)) !== null) {
      node.appendChild(document.createTextNode(text.slice(last, m.index)));
      if (m[1] != null) node.appendChild(el("span", { class: "figure-note" }, "（图：" + m[1] + "，见模型文件夹）"));
      else if (m[2] != null) node.appendChild(el("strong", {}, m[2]));
      else node.appendChild(el("code", {}, m[3]));
      last = re.lastIndex;
    }
    node.appendChild(document.createTextNode(text.slice(last)));
    return node;
  }

  K.renderMarkdown = renderMarkdown;
})(window.kefuAdmin);
