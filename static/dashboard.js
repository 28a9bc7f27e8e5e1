// Small behaviours that need no build: elapsed time ticking between polls, the phase filter,
// and the run picker submitting itself. Everything here also works without it.
(function () {
  "use strict";

  function formatDuration(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (h) return h + "h " + pad(m) + "m";
    if (m) return m + "m " + pad(s) + "s";
    return s + "s";
  }

  function tickElapsed() {
    document.querySelectorAll("[data-elapsed-from]").forEach(function (el) {
      var from = Date.parse(el.getAttribute("data-elapsed-from"));
      if (!isNaN(from)) el.textContent = formatDuration(Math.max(0, Math.floor((Date.now() - from) / 1000)));
    });
    // The ETA counts down from when its figure arrived (no clock skew with the server); once the
    // estimate has passed, it says by how much instead of standing at zero.
    document.querySelectorAll("[data-eta-seconds]").forEach(function (el) {
      if (!el.hasAttribute("data-eta-seen")) el.setAttribute("data-eta-seen", String(Date.now()));
      var seen = Number(el.getAttribute("data-eta-seen"));
      var left = Number(el.getAttribute("data-eta-seconds")) - Math.floor((Date.now() - seen) / 1000);
      el.textContent = left >= 0 ? formatDuration(left) : "overdue by " + formatDuration(-left);
    });
  }

  function phaseFilter() {
    var form = document.querySelector("[data-phase-filter]");
    if (!form) return null;
    var text = form.querySelector("input[name=q]");
    var state = form.querySelector("select[name=state]");
    var count = document.querySelector("[data-filter-count]");
    var params = new URLSearchParams(window.location.search);
    text.value = params.get("q") || "";
    state.value = params.get("state") || "";

    function apply() {
      var q = text.value.trim().toLowerCase(), s = state.value, shown = 0, total = 0;
      document.querySelectorAll("tbody.phase-row").forEach(function (row) {
        total += 1;
        var match = (!s || row.getAttribute("data-state") === s) &&
          (!q || (row.getAttribute("data-text") || "").indexOf(q) !== -1);
        row.hidden = !match;
        if (match) shown += 1;
      });
      if (count) count.textContent = (q || s) ? shown + " of " + total + " phases shown" : "";
    }

    function remember() {
      var url = new URL(window.location.href);
      ["q", "state"].forEach(function (key) { url.searchParams.delete(key); });
      if (text.value.trim()) url.searchParams.set("q", text.value.trim());
      if (state.value) url.searchParams.set("state", state.value);
      history.replaceState(null, "", url);
      apply();
    }

    form.addEventListener("submit", function (event) { event.preventDefault(); remember(); });
    text.addEventListener("input", remember);
    state.addEventListener("change", remember);
    var jump = form.querySelector("[data-jump-current]");
    if (jump) {
      jump.addEventListener("click", function () {
        text.value = ""; state.value = ""; remember();
      });
    }
    apply();
    return apply;
  }

  // A refused dashboard change answers JSON {error, details}: say it where the change was made.
  // Refused changes come back as HTML that htmx places itself (beside the control, out of band).
  // What is left is a cell's choices that could not be fetched (the server away, say).
  function showRefusal(event) {
    var cell = event.detail.elt.closest && event.detail.elt.closest("[data-cell]");
    if (!cell) return;
    var box = cell.querySelector(".cell-error");
    if (!box) {
      box = document.createElement("span");
      box.className = "cell-error";
      box.setAttribute("role", "alert");
      cell.appendChild(box);
    }
    box.textContent = "Could not load the choices (HTTP " + event.detail.xhr.status + ")";
  }

  // The mapping strip names the window the usage panel shows: its poll asks for that panel's period.
  function followUsagePeriod(event) {
    if (!event.detail.elt.hasAttribute("data-follows-usage-period")) return;
    var usage = document.getElementById("usage-panel");
    var source = usage && usage.getAttribute("hx-get");
    var period = source && new URL(source, window.location.href).searchParams.get("period");
    if (period) event.detail.parameters.period = period;
  }

  // The notes form: its button waits for text; a saved note clears it; a refusal is said in place.
  function noteForms() {
    document.querySelectorAll("[data-note-form]").forEach(function (form) {
      var text = form.querySelector("textarea");
      var button = form.querySelector("[data-needs-text]");
      var error = form.querySelector("[data-form-error]");
      var sync = function () { button.disabled = !text.value.trim(); };
      text.addEventListener("input", sync);
      form.addEventListener("htmx:afterRequest", function (event) {
        if (event.detail.elt !== form) return;
        // A refusal answers with its reason already in place (X-Refused): keep what was typed.
        if (event.detail.successful && !event.detail.xhr.getResponseHeader("X-Refused")) {
          form.reset();
          error.textContent = "";
        } else if (!event.detail.successful) {
          error.textContent = "Not saved (HTTP " + event.detail.xhr.status + ")";
        }
        sync();
      });
      sync();
    });
  }

  // Run and phase controls: each button opens the page's one <dialog>, which says what the action does
  // and asks why; only its Confirm posts. An in-page dialog, because the editors' sandboxed frames
  // make confirm() return false without showing anything.
  function controlDialog() {
    var dialog = document.getElementById("control-dialog");
    if (!dialog) return;
    var form = dialog.querySelector("form");
    var field = function (name) { return form.elements.namedItem(name); };
    var errorBox = function () { return document.getElementById("run-summary-error"); };
    document.body.addEventListener("click", function (event) {
      var button = event.target.closest && event.target.closest("[data-control]");
      if (!button) return;
      form.reset();
      field("action").value = button.getAttribute("data-control");
      field("phase_id").value = button.getAttribute("data-phase-id") || "";
      // The page's version: the answer carries what changed since, as the next poll would.
      var summary = document.getElementById("run-summary");
      if (summary) field("v").value = summary.getAttribute("data-version");
      dialog.querySelector("[data-control-title]").textContent = button.getAttribute("data-control-title");
      dialog.querySelector("[data-control-text]").textContent = button.getAttribute("data-control-text");
      dialog.querySelector("[data-control-confirm]").textContent = button.textContent.replace("…", "");
      if (errorBox()) errorBox().textContent = "";
      dialog.showModal();
      field("reason").focus();
    });
    dialog.querySelector("[data-control-close]").addEventListener("click", function () { dialog.close(); });
    form.addEventListener("htmx:afterRequest", function (event) {
      if (event.detail.elt !== form) return;
      // A refusal answers with its reason already in the dialog (X-Refused): keep it open to read.
      if (event.detail.successful && !event.detail.xhr.getResponseHeader("X-Refused")) {
        dialog.close();
      } else if (!event.detail.successful && errorBox()) {
        errorBox().textContent = "Not done (HTTP " + event.detail.xhr.status + ")";
      }
    });
  }

  // Copy context: the clipboard API where the page may use it, else a selected textarea and
  // execCommand (the editors' frames refuse the clipboard API). The text stays on show either way.
  function copyContext(button) {
    var panel = button.closest(".copy-context");
    var area = panel.querySelector("textarea");
    var status = panel.querySelector("[data-copy-status]");
    var fallback = function () {
      area.focus();
      area.select();
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      status.textContent = copied ? "Copied." : "Select the text below and copy it by hand.";
    };
    var copy = function () {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(area.value).then(function () { status.textContent = "Copied."; }, fallback);
      } else {
        fallback();
      }
    };
    fetch(button.getAttribute("data-copy-context"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (text) { area.value = text; copy(); }, copy);
  }

  // A poll that fails (server away, 503 while the database restarts) keeps the panel as it was
  // (htmx swaps no error answer) and says so until a poll succeeds again.
  function connectionStatus() {
    var status = document.querySelector("[data-connection-status]");
    if (!status) return;
    var isPoll = function (elt) {
      var trigger = elt && elt.getAttribute && elt.getAttribute("hx-trigger");
      return !!trigger && trigger.indexOf("every") !== -1;
    };
    // beforeOnLoad fires while the polled element is still in the page (a swap may replace it).
    document.body.addEventListener("htmx:beforeOnLoad", function (event) {
      if (isPoll(event.detail.elt)) status.hidden = event.detail.xhr.status < 400;
    });
    document.body.addEventListener("htmx:sendError", function (event) {
      if (isPoll(event.detail.elt)) status.hidden = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    connectionStatus();
    document.body.addEventListener("htmx:responseError", showRefusal);
    document.body.addEventListener("htmx:configRequest", followUsagePeriod);
    noteForms();
    controlDialog();
    document.body.addEventListener("click", function (event) {
      var button = event.target.closest && event.target.closest("[data-copy-context]");
      if (button) copyContext(button);
    });
    var refilter = phaseFilter();
    // Rows swapped in by a poll must obey the filter the person set.
    if (refilter) document.body.addEventListener("htmx:afterSettle", refilter);
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    tickElapsed();
    window.setInterval(tickElapsed, 1000);
  });
})();
