/*
 * kefu manager's console, 知识库 › 店铺信息 and 修改记录: the shop's facts (shop.yml values that
 * answers are filled from), edited by field and saved over the version read; the audit log of
 * every change, who and when, before and after.
 */
(function (K) {
  "use strict";

  var $ = K.$, el = K.el, api = K.api, say = K.say, describe = K.describe, when = K.when, lines = K.lines;
  var titleOf = K.titleOf, shopText = K.shopText;
  var CHANGES_PAGE = 30;

  // The sections of shop.yml and its values, named for a shop manager; others show their key.
  var SECTIONS = {
    "": "基本信息", service_hours: "客服时间", shipping: "发货和物流", payment: "付款", invoice: "发票",
    returns: "退换货", orders: "订单", sizes: "尺码"
  };
  var LABELS = {
    name: "店铺名称", assistant_name: "机器人客服的名字", timezone: "时区",
    "service_hours.open": "上班时间", "service_hours.close": "下班时间", "service_hours.days": "工作日",
    "shipping.cutoff_time": "当天发货的付款截止时间", "shipping.ship_within_hours": "最晚多少小时内发货",
    "shipping.weekend_shipping": "周末发货说明", "shipping.presale_days": "预售发货天数",
    "shipping.default_courier": "默认快递", "shipping.free_shipping_threshold": "包邮门槛（元）",
    "shipping.base_fee": "基础运费（元）", "shipping.remote_fee": "偏远地区运费（元）",
    "shipping.remote_regions": "偏远地区", "shipping.hmt_fee": "港澳台运费（元）", "shipping.hmt_regions": "港澳台地区",
    "shipping.overseas": "海外发货说明", "shipping.local_regions": "近处地区", "shipping.warehouse": "发货仓库",
    "shipping.eta.local": "近处到货天数", "shipping.eta.default": "一般到货天数",
    "shipping.eta.remote": "偏远地区到货天数", "shipping.eta.hmt": "港澳台到货天数",
    "payment.methods": "付款方式", "payment.installments": "分期说明", "payment.pay_for_others": "代付说明",
    "payment.cod": "支持货到付款", "payment.cod_fee": "货到付款手续费（元）", "payment.cod_regions": "不支持货到付款的地区",
    "payment.unpaid_cancel_minutes": "未付款自动取消（分钟）", "payment.discount_rules": "优惠规则",
    "payment.price_protection_days": "价保天数",
    "invoice.types": "发票类型", "invoice.issue_days": "开票时间（工作日）", "invoice.how": "怎么开发票",
    "invoice.company": "公司抬头说明", "invoice.change": "修改发票说明",
    "returns.window_days": "无理由退货天数", "returns.conditions": "退货条件", "returns.sale_items": "特价商品说明",
    "returns.address": "退货地址", "returns.note": "寄回注意事项", "returns.insurance": "运费险说明",
    "returns.buyer_pays": "顾客承担运费的情况", "returns.seller_pays": "店铺承担运费的情况",
    "returns.exchange_note": "换货说明", "returns.refund_days": "退款到账天数（工作日）", "returns.refund_route": "退款去向",
    "orders.cancel_unpaid": "取消未付款订单", "orders.cancel_paid": "取消已付款未发货订单",
    "orders.refund_unshipped": "未发货退款说明", "orders.shipped": "已发货订单说明",
    "sizes.system": "尺码体系", "sizes.fit_note": "版型说明", "sizes.shrinkage": "缩水说明", "sizes.restock_days": "补货天数"
  };

  var shopTheirs = null;     // shop.yml as someone else saved it (after a 409)
  var changesBefore = null;  // the oldest change shown: the next page is older

  function loadShop() {
    say("shop-error", "");
    return api("/v1/admin/kb/shop").then(function (s) {
      K.shop = s;
      shopTheirs = null;
      $("shop-conflict").hidden = true;
      renderShop();
    }).catch(function (err) { say("shop-error", "店铺信息加载失败：" + describe(err)); });
  }

  function renderShop() {
    var box = $("shop-fields");
    box.textContent = "";
    var sets = {};
    Object.keys(K.shop.fields).forEach(function (key, i) {
      var section = key.indexOf(".") > 0 ? key.slice(0, key.indexOf(".")) : "";
      if (!sets[section]) {
        sets[section] = el("fieldset", { class: "shop-section" });
        sets[section].appendChild(el("legend", {}, SECTIONS[section] || section));
        box.appendChild(sets[section]);
      }
      sets[section].appendChild(shopField(key, K.shop.fields[key], i));
    });
  }

  function shopField(key, value, i) {
    var row = el("div", { class: "shop-field" });
    var id = "shop-" + i;
    var label = el("label", { for: id });
    label.appendChild(el("span", {}, LABELS[key] || key));
    label.appendChild(el("span", { class: "id" }, "{" + key + "}"));
    row.appendChild(label);
    var input;
    if (Array.isArray(value)) {
      input = el("textarea", { rows: String(Math.min(Math.max(value.length, 2), 6)), "aria-describedby": id + "-hint" });
      input.value = value.join("\n");
      var wrap = el("div");
      wrap.appendChild(input);
      wrap.appendChild(el("p", { class: "hint", id: id + "-hint" }, "每行一项"));
      row.appendChild(wrap);
    } else if (typeof value === "boolean") {
      input = el("input", { type: "checkbox" });
      input.checked = value;
      row.appendChild(input);
    } else {
      input = el("input", { type: typeof value === "number" ? "number" : "text", maxlength: "500" });
      if (typeof value === "number") input.step = "any";
      input.value = String(value);
      row.appendChild(input);
    }
    input.id = id;
    input.dataset.key = key;
    return row;
  }

  function shopChanges() {
    var out = {};
    var bad = null;
    Array.prototype.forEach.call($("shop-fields").querySelectorAll("[data-key]"), function (input) {
      var key = input.dataset.key;
      var old = K.shop.fields[key];
      var now;
      if (Array.isArray(old)) now = lines(input.value);
      else if (typeof old === "boolean") now = input.checked;
      else if (typeof old === "number") {
        now = input.value.trim() === "" ? NaN : Number(input.value);
        if (isNaN(now)) { bad = bad || (LABELS[key] || key) + " 要填数字"; return; }
      } else now = input.value.trim();
      if (JSON.stringify(now) !== JSON.stringify(old)) out[key] = now;
    });
    if (bad) throw new Error(bad);
    return out;
  }

  function saveShop(e) {
    if (e) e.preventDefault();
    say("shop-error", "");
    say("shop-status", "");
    var values;
    try { values = shopChanges(); } catch (err) { say("shop-error", err.message); return; }
    if (!Object.keys(values).length) { say("shop-status", "没有改动。"); return; }
    var version = shopTheirs ? shopTheirs.version : K.shop.version;
    api("/v1/admin/kb/shop", { method: "PUT", body: { values: values, version: version } }).then(function (s) {
      K.shop = s;
      shopTheirs = null;
      $("shop-conflict").hidden = true;
      renderShop();
      say("shop-status", "已保存 " + Object.keys(values).length + " 项，机器人的回答已经更新。");
      K.kb.refreshOpen();
    }).catch(function (err) {
      if (err.status === 409) {
        api("/v1/admin/kb/shop").then(function (s) {
          shopTheirs = s;
          $("shop-conflict").hidden = false;
          $("shop-mine").focus();
        }).catch(function (e2) { say("shop-error", describe(e2)); });
      } else {
        say("shop-error", "保存失败：" + describe(err));
      }
    });
  }

  // ---- 修改记录 ------------------------------------------------------------------------
  var ACTION_NAMES = { create: "新建", update: "修改", shop: "修改店铺信息" };

  function loadChanges(more) {
    say("changes-error", "");
    var url = "/v1/admin/kb/changes?limit=" + CHANGES_PAGE + (more && changesBefore ? "&before=" + changesBefore : "");
    return api(url).then(function (body) {
      var list = $("changes");
      if (!more) list.textContent = "";
      var items = body.changes || [];
      items.forEach(function (c) { list.appendChild(renderChange(c)); });
      if (items.length) changesBefore = items[items.length - 1].id;
      $("changes-more").hidden = items.length < CHANGES_PAGE;
      if (!more && !items.length) list.appendChild(el("li", { class: "empty" }, "还没有修改记录。"));
    }).catch(function (err) { say("changes-error", "修改记录加载失败：" + describe(err)); });
  }

  function renderChange(c) {
    var li = el("li");
    var head = el("div", { class: "change-head" });
    var target = c.target === "shop" ? "店铺信息" : ((c.after && c.after.title) || titleOf(c.target));
    var action = c.target === "shop" ? "" : (ACTION_NAMES[c.action] || c.action) + "：";
    head.appendChild(el("span", { class: "change-what" }, action + target));
    if (c.target !== "shop") head.appendChild(el("span", { class: "id" }, c.target));
    head.appendChild(el("span", { class: "change-when" }, when(c.at) + " · " + c.who));
    li.appendChild(head);
    var body = el("ul", { class: "change-body" });
    diffLines(c).forEach(function (d) { body.appendChild(d); });
    li.appendChild(body);
    return li;
  }

  function diffRow(label, before, after) {
    var li = el("li");
    li.appendChild(el("span", {}, label + "："));
    if (before != null) li.appendChild(el("del", {}, before));
    if (before != null && after != null) li.appendChild(document.createTextNode(" → "));
    if (after != null) li.appendChild(el("ins", {}, after));
    return li;
  }

  function diffLines(c) {
    var b = c.before || {};
    var a = c.after || {};
    var out = [];
    if (c.action === "shop") {
      Object.keys(a).forEach(function (k) { out.push(diffRow(LABELS[k] || k, shopText(b[k]), shopText(a[k]))); });
      return out;
    }
    if (!c.before) {
      out.push(diffRow("标题", null, a.title));
      out.push(diffRow("回答", null, a.answer));
      out.push(el("li", {}, "例句 " + (a.examples || []).length + " 句：" + (a.examples || []).join("；")));
      return out;
    }
    if (b.title !== a.title) out.push(diffRow("标题", b.title, a.title));
    if ((b.answer || "").trim() !== (a.answer || "").trim()) out.push(diffRow("回答", b.answer, a.answer));
    var added = (a.examples || []).filter(function (x) { return (b.examples || []).indexOf(x) < 0; });
    var removed = (b.examples || []).filter(function (x) { return (a.examples || []).indexOf(x) < 0; });
    if (added.length) out.push(el("li", {}, "新增例句 " + added.length + " 句：" + added.join("；")));
    if (removed.length) out.push(el("li", {}, "删除例句 " + removed.length + " 句：" + removed.join("；")));
    if (!out.length) out.push(el("li", {}, "没有可见的变化"));
    return out;
  }

  function show() {
    var shown = $("shop-fields").children.length > 0;
    var edited = false;
    try { edited = shown && Object.keys(shopChanges()).length > 0; } catch (e) { edited = true; }
    if (!edited) loadShop();  // what the manager typed stays until saved
  }

  function init() {
    $("shop-form").addEventListener("submit", saveShop);
    $("shop-mine").addEventListener("click", function () { $("shop-conflict").hidden = true; saveShop(); });
    $("shop-reload").addEventListener("click", loadShop);
    $("changes-more").addEventListener("click", function () { loadChanges(true); });
  }

  K.facts = { init: init, show: show, showChanges: function () { loadChanges(false); } };
})(window.kefuAdmin);
