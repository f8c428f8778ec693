// hajimi dashboard: progressive enhancement only. Every page works without
// this file except the live log tail. No inline handlers (the CSP forbids
// them); records from the server are inserted with textContent, never as HTML.
// Words come from the page (data-* attributes written in the page's
// language), never from this file.
(function () {
  "use strict";

  // `template` with each {name} replaced by values[name].
  function fill(template, values) {
    return String(template || "").replace(/\{([a-z_]+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  // Buttons with data-confirm ask before submitting (delete, clear invalid).
  function setupConfirm() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button[data-confirm]") : null;
      if (button && !window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  }

  // The "select all" checkbox of the keys table (hidden without JS).
  function setupSelectAll() {
    var all = document.getElementById("keys-select-all");
    var table = document.getElementById("keys-table");
    if (!all || !table) return;
    var boxes = table.querySelectorAll('tbody input[type="checkbox"][name="id"]');
    if (boxes.length === 0) return;
    all.hidden = false;
    function sync() {
      var checked = 0;
      boxes.forEach(function (box) { if (box.checked) checked += 1; });
      all.checked = checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
      all.indeterminate = false;
    });
    boxes.forEach(function (box) { box.addEventListener("change", sync); });
    sync();
  }

  // Poll the validation progress every second while a run is going.
  function setupValidationProgress() {
    var box = document.getElementById("validation-progress");
    if (!box || box.getAttribute("data-running") !== "true") return;
    var url = box.getAttribute("data-url");
    var bar = box.querySelector("progress");
    var status = box.querySelector("[data-status]");
    function show(p) {
      if (bar && p.total > 0) {
        bar.max = p.total;
        bar.value = p.done;
      }
      if (status) {
        var percent = p.total > 0 ? Math.floor((p.done * 100) / p.total) : 0;
        var template = box.getAttribute(p.running ? "data-checking" : "data-finished");
        status.textContent = fill(template, {
          done: p.done, total: p.total, percent: percent, valid: p.valid, invalid: p.invalid
        });
      }
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (p) {
          show(p);
          if (p.running) {
            window.setTimeout(poll, 1000);
          } else {
            // Reload once so the table shows the new key states.
            window.setTimeout(function () { window.location.reload(); }, 800);
          }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 1000);
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function formatTime(record) {
    if (typeof record.time === "string" && record.time) return record.time;
    if (typeof record.time_ms === "number") {
      var d = new Date(record.time_ms);
      return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
        two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
    }
    return "";
  }

  // The live log tail: one EventSource, each record appended as a new <li>.
  function setupLogTail() {
    var list = document.getElementById("log-records");
    if (!list || typeof window.EventSource !== "function") return;
    var url = list.getAttribute("data-stream-url");
    if (!url) return;
    var capacity = parseInt(list.getAttribute("data-capacity"), 10);
    if (!(capacity > 0)) capacity = 1000;
    var status = document.getElementById("log-live");
    var lastSeq = -1;
    list.querySelectorAll("li[data-seq]").forEach(function (li) {
      var seq = Number(li.getAttribute("data-seq"));
      if (seq > lastSeq) lastSeq = seq;
    });
    // state: connecting, live, stopped or reconnecting (the words are the
    // element's data-connecting, data-live, … attributes).
    function setStatus(state) {
      if (!status) return;
      status.setAttribute("data-state", state);
      var text = status.getAttribute("data-" + state);
      if (text) status.textContent = text;
    }
    function span(className, text) {
      var el = document.createElement("span");
      el.className = className;
      el.textContent = text;
      return el;
    }
    function append(record) {
      var seq = typeof record.seq === "number" ? record.seq : null;
      if (seq !== null) {
        if (seq <= lastSeq) return; // already on the page
        lastSeq = seq;
      }
      var level = String(record.level || "").toUpperCase();
      var li = document.createElement("li");
      if (seq !== null) li.setAttribute("data-seq", String(seq));
      li.setAttribute("data-level", level);
      li.className = "new";
      var time = document.createElement("time");
      time.textContent = formatTime(record);
      li.appendChild(time);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(span("badge level", level));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(span("source", String(record.source || "")));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(span("message", String(record.message || "")));
      var nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      list.appendChild(li);
      while (list.children.length > capacity) list.removeChild(list.firstElementChild);
      if (nearBottom) li.scrollIntoView({ block: "end" });
    }
    var source = new EventSource(url, { withCredentials: true });
    setStatus("connecting");
    source.onopen = function () { setStatus("live"); };
    source.onmessage = function (event) {
      var record;
      try { record = JSON.parse(event.data); } catch (e) { return; }
      if (record && typeof record === "object") append(record);
    };
    source.onerror = function () {
      setStatus(source.readyState === EventSource.CLOSED ? "stopped" : "reconnecting");
    };
  }

  // The Settings page's import: a chosen settings.json is read into the
  // form's text field (pasting it works without this too).
  function setupImportFile() {
    var input = document.getElementById("settings-import-file");
    var target = document.getElementById("settings-import-json");
    if (!input || !target || typeof FileReader === "undefined") return;
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file || file.size > 4 * 1024 * 1024) return;
      var reader = new FileReader();
      reader.onload = function () { target.value = String(reader.result || ""); };
      reader.readAsText(file);
    });
  }

  function start() {
    setupImportFile();
    setupConfirm();
    setupSelectAll();
    setupValidationProgress();
    setupLogTail();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
