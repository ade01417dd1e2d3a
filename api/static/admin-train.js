/*
 * kefu manager's console, 命中测试 and 训练与发布: a message tried on the model in service and on the
 * newest trained one side by side; a training run started and followed (progress, the gate's
 * verdict and figures, the report), then published or rolled back.
 */
(function (K) {
  "use strict";

  var $ = K.$, el = K.el, api = K.api, say = K.say, describe = K.describe, known = K.known, notice = K.notice;
  var pct = K.pct, trainedAt = K.trainedAt, confirmBox = K.confirmBox;
  var POLL_MS = 1500;  // how often a running training is asked how far it got

  var ACTIONS = { answer: "直接回答", suggest: "给出猜测的问题让顾客选", clarify: "请顾客换个说法", handoff: "转人工" };
  var REASONS = K.REASONS;
  var STAGES = {
    starting: "准备中", "cross-validation": "检验模型学得怎么样（交叉验证）", comparison: "比较不同的特征",
    "final fit": "训练最终模型", context: "学习追问和上下文", evaluation: "在测试集上评估", report: "写训练报告",
    done: "完成"
  };
  // The gate's held-out figures: [key, label, higher is better].
  var FIGURES = [
    ["route_accuracy", "分流准确率（该答的答，该转人工的转）", true],
    ["entry_accuracy", "答对问题的比例", true],
    ["wrong_answer_rate", "答错的比例", false],
    ["faq_handoff_rate", "能答却转了人工的比例", false],
    ["human_recall", "需要人工的消息转给人工的比例", true],
    ["macro_f1", "各问题平均得分（macro-F1）", true]
  ];

  var pollTimer = null;

  function elapsed(iso) {
    var s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    return s < 60 ? s + " 秒" : Math.floor(s / 60) + " 分 " + (s % 60) + " 秒";
  }

  // ---- 命中测试 ------------------------------------------------------------------------
  // The candidate: the latest run's model, when it is done and is not the one in service.
  function candidate() {
    var run = K.run, model = K.model;
    return run && run.status === "done" && run.version && model && run.version !== model.version ? run.version : null;
  }

  function refreshModels() {
    return Promise.all([api("/v1/admin/model"), api("/v1/admin/train")]).then(function (res) {
      K.model = res[0];
      K.run = res[1].job ? res[1] : null;
      renderModelBadge();
    });
  }

  function tryMessage(e) {
    e.preventDefault();
    var text = $("try-text").value.trim();
    say("try-error", "");
    if (!text) { say("try-error", "请先输入一句顾客的话。"); return; }
    var results = $("try-results");
    refreshModels().then(function () {
      var asks = [api("/v1/admin/try", { method: "POST", body: { message: text } })];
      var next = candidate();
      if (next) asks.push(api("/v1/admin/try", { method: "POST", body: { message: text, version: next } })
        .catch(function (err) { return { failed: err, version: next }; }));
      return Promise.all(asks).then(function (outs) {
        results.textContent = "";
        results.appendChild(resultCard(outs[0], "正在使用的模型", false));
        if (outs[1]) results.appendChild(resultCard(outs[1], "新训练的模型（还没发布）", true));
      });
    }).catch(function (err) { say("try-error", "测试失败：" + describe(err)); });
  }

  function resultCard(out, heading, isNew) {
    var card = el("section", { class: "card result" + (isNew ? " new" : ""), "aria-label": heading });
    card.appendChild(el("h3", {}, heading));
    var at = trainedAt(out.version);
    card.appendChild(el("p", { class: "id" }, "模型 " + out.version + (at ? "（" + at + " 训练）" : "")));
    if (out.failed) {
      card.appendChild(el("p", { class: "error" }, "这个模型测试失败：" + describe(out.failed)));
      return card;
    }
    var route = ACTIONS[out.action] || out.action;
    if (out.action === "handoff" && out.reason) route += "（" + (REASONS[out.reason] || out.reason) + "）";
    card.appendChild(el("p", { class: "result-route route-" + out.action }, route));
    var entry = el("p", { class: "result-entry" });
    entry.appendChild(el("span", {}, "识别为：" + (out.title || out.intent || "—") + " "));
    if (out.intent) entry.appendChild(el("span", { class: "id" }, out.intent + " "));
    entry.appendChild(el("span", { class: "pct" }, "把握 " + pct(out.confidence)));
    card.appendChild(entry);
    var top = el("ol", { class: "result-top", "aria-label": "最接近的三个问题" });
    (out.top || []).forEach(function (t) {
      var li = el("li");
      var name = el("span");
      name.appendChild(el("span", {}, (t.title || t.intent) + " "));
      name.appendChild(el("span", { class: "id" }, t.intent));
      li.appendChild(name);
      li.appendChild(el("meter", { min: "0", max: "1", value: String(t.confidence), "aria-label": t.title || t.intent }));
      li.appendChild(el("span", { class: "pct" }, pct(t.confidence)));
      top.appendChild(li);
    });
    card.appendChild(top);
    if (out.suggestions && out.suggestions.length) {
      var options = out.suggestions.map(function (s) { return s.title || s.intent; });
      card.appendChild(el("p", { class: "hint" }, "给顾客的选项：" + options.join("、")));
    }
    card.appendChild(el("p", { class: "result-reply" }, out.reply || "（不回复）"));
    return card;
  }

  // ---- 训练与发布 ----------------------------------------------------------------------
  function renderModelBadge() {
    if (!K.model) return;
    $("model-badge").textContent = "在用模型 " + (trainedAt(K.model.version) || K.model.version);
    var info = $("model-info");
    info.textContent = "";
    info.appendChild(el("span", {}, "正在使用的模型："));
    info.appendChild(el("span", { class: "id" }, K.model.version));
    var at = trainedAt(K.model.version);
    if (at) info.appendChild(el("span", {}, "（" + at + " 训练）"));
    if (K.model.previous) {
      info.appendChild(el("br"));
      info.appendChild(el("span", {}, "上一个模型："));
      info.appendChild(el("span", { class: "id" }, K.model.previous));
    }
    $("rollback").disabled = !K.model.previous;
    $("rollback").title = K.model.previous ? "" : "没有更早的模型可以回滚";
  }

  function loadTrain() {
    say("train-error", "");
    return refreshModels().then(function () {
      renderRun();
      if (K.run && K.run.status === "running") startPolling(K.run.job);
    }).catch(function (err) { say("train-error", "读取训练状态失败：" + describe(err)); });
  }

  function startTraining() {
    say("train-error", "");
    $("train-notice").hidden = true;
    $("train-start").disabled = true;
    api("/v1/admin/train", { method: "POST" }).then(function (state) {
      K.run = state;
      renderRun();
      startPolling(state.job);
      $("train-stage").focus();
    }).catch(function (err) {
      if (err.status === 409) {
        notice("train-notice", "已经有一个训练在进行中，下面显示它的进度。", true);
        loadTrain();
      } else {
        $("train-start").disabled = false;
        say("train-error", "没能开始训练：" + describe(err));
      }
    });
  }

  function startPolling(job) {
    stopPolling();
    pollTimer = setTimeout(function poll() {
      api("/v1/admin/train/" + encodeURIComponent(job)).then(function (state) {
        if (state.status !== "failed") say("train-error", "");
        K.run = state;
        renderRun();
        if (state.status === "running") pollTimer = setTimeout(poll, POLL_MS);
        else { pollTimer = null; finished(state); }
      }).catch(function (err) {
        if (!K.token) return;
        say("train-error", "读取训练进度失败，正在重试：" + describe(err));
        pollTimer = setTimeout(poll, POLL_MS * 2);
      });
    }, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function finished(state) {
    if (state.status === "done") {
      notice("train-notice", "训练完成。看看下面的测试结果，也可以先到「命中测试」里试试新模型，满意后再发布。");
    }
  }

  function renderRun() {
    var going = !!K.run && K.run.status === "running";
    $("train-start").disabled = going;
    $("train-start").textContent = going ? "训练中…" : "开始训练";
    $("train-state").textContent = going ? "(训练中)" : candidate() ? "(待发布)" : "";
    $("run").hidden = !K.run;
    if (!K.run) return;
    var progress = Math.round((K.run.progress || 0) * 100);
    $("train-progress").value = progress;
    $("train-progress").setAttribute("aria-valuetext", progress + "%");
    var stage = STAGES[K.run.stage] || K.run.stage || "";
    if (going) {
      say("train-stage", "第 " + progress + "%：" + stage + (K.run.started ? "，已用 " + elapsed(K.run.started) : ""));
    } else if (K.run.status === "failed") {
      say("train-stage", "训练失败");
      var why = known(K.run.error) || K.run.error || "原因不明";
      say("train-error", "训练失败：" + why + " 知识库和正在使用的模型都没有改变。");
    } else {
      say("train-stage", "训练完成" + (K.run.version ? "：新模型 " + K.run.version : ""));
    }
    $("run-title").textContent = going ? "训练进度" : K.run.status === "failed" ? "上一次训练" : "最近一次训练";
    $("run-result").hidden = K.run.status !== "done";
    if (K.run.status === "done") renderResult();
  }

  function renderResult() {
    var gate = K.run.gate || {};
    var verdict = $("verdict");
    verdict.textContent = gate.passed ? "测试结果：通过（新模型不比正在使用的差）" :
      "测试结果：未通过（新模型在测试集上不如正在使用的模型）";
    verdict.className = "verdict " + (gate.passed ? "pass" : "fail");
    var tbody = $("gate-table").querySelector("tbody");
    tbody.textContent = "";
    var now = gate.heldout;
    var before = gate.previous_heldout;
    if (!now) {
      var tr = el("tr");
      tr.appendChild(el("td", { colspan: "4" }, "没有配置留出测试集（KEFU_HELDOUT_FILE），无法比较。"));
      tbody.appendChild(tr);
    }
    FIGURES.forEach(function (f) {
      if (!now || now[f[0]] == null) return;
      var row = el("tr");
      row.appendChild(el("th", { scope: "row" }, f[1]));
      row.appendChild(el("td", {}, pct(now[f[0]], 1)));
      row.appendChild(el("td", {}, before ? pct(before[f[0]], 1) : "—"));
      var change = before && before[f[0]] != null ? (now[f[0]] - before[f[0]]) * 100 : null;
      var better = change != null && Math.abs(change) >= 0.05 && (change > 0) === f[2];
      var worse = change != null && Math.abs(change) >= 0.05 && !better;
      row.appendChild(el("td", { class: better ? "better" : worse ? "worse" : "" },
        change == null ? "—" : Math.abs(change) < 0.05 ? "持平" :
          (change > 0 ? "+" : "") + change.toFixed(1) + (better ? " 更好" : " 更差")));
      tbody.appendChild(row);
    });
    var live = K.model && K.run.version === K.model.version;
    $("publish").disabled = !!live;
    $("publish").textContent = live ? "已发布（正在使用）" : "发布新模型";
    K.renderMarkdown($("report"), K.run.report || "（没有报告）");
  }

  function publish() {
    if (!K.run || !K.run.version) return;
    var gate = K.run.gate || {};
    var ask = gate.passed ? Promise.resolve(true) :
      confirmBox("这个新模型没有通过测试：在留出测试集上不如正在使用的模型。仍然要发布吗？", "仍然发布");
    ask.then(function (ok) {
      if (!ok) return;
      say("train-error", "");
      $("publish").disabled = true;
      api("/v1/admin/model/reload", { method: "POST", body: { version: K.run.version } }).then(function (out) {
        notice("train-notice", "已发布：顾客现在由新模型 " + out.version + " 回答。不满意可以点「回滚到上一个模型」。");
        return refreshModels().then(renderRun);
      }).catch(function (err) {
        $("publish").disabled = false;
        say("train-error", "发布失败，顾客仍由原来的模型回答：" + describe(err));
      });
    });
  }

  function rollback() {
    confirmBox("回滚到上一个模型？顾客会马上改由上一个模型回答（知识库的回答不变）。", "回滚").then(function (ok) {
      if (!ok) return;
      say("train-error", "");
      api("/v1/admin/model/rollback", { method: "POST" }).then(function (out) {
        notice("train-notice", "已回滚：现在使用模型 " + out.version + "。");
        return refreshModels().then(renderRun);
      }).catch(function (err) { say("train-error", "回滚失败：" + describe(err)); });
    });
  }

  function init() {
    $("try-form").addEventListener("submit", tryMessage);
    $("train-start").addEventListener("click", startTraining);
    $("publish").addEventListener("click", publish);
    $("rollback").addEventListener("click", rollback);
  }

  K.train = { init: init, show: loadTrain, refresh: refreshModels, stop: stopPolling, renderModel: renderModelBadge };
})(window.kefuAdmin);
