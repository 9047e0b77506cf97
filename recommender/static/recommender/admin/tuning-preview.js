// Live preview of the tuning page: posts the unsaved form to the staff-only preview view and
// shows the saved-tuning list next to the edited one. Plain DOM, no library.
(function () {
  "use strict";
  function init() {
    var section = document.getElementById("rec-preview");
    var form = document.getElementById("tuning-form");
    if (!section || !form) { return; }
    var status = document.getElementById("rec-preview-status");
    var historyLine = document.getElementById("rec-preview-history");
    var subject = document.getElementById("rec-preview-subject");
    var timer = null;
    var seq = 0;
    var lastKey = null;
    var lastCurrent = null;

    function cell(row, text, href) {
      var td = document.createElement("td");
      if (href) {
        var a = document.createElement("a");
        a.href = href;
        a.textContent = text;
        td.appendChild(a);
      } else {
        td.textContent = text;
      }
      row.appendChild(td);
    }

    function fill(tableId, items, other) {
      var body = document.querySelector("#" + tableId + " tbody");
      body.textContent = "";
      var otherIds = other.map(function (r) { return r.item_id; });
      items.forEach(function (r, i) {
        var tr = document.createElement("tr");
        tr.dataset.itemId = r.item_id;
        if (otherIds[i] !== r.item_id) { tr.className = "rec-changed"; }
        cell(tr, String(r.position + 1));
        cell(tr, r.title + " (#" + r.item_id + ")", r.admin_url);
        note(tr.lastChild, r.because);
        note(tr.lastChild, r.reason + " · score " + r.score.toFixed(3));
        body.appendChild(tr);
      });
      if (!items.length) {
        var tr = document.createElement("tr");
        cell(tr, "");
        cell(tr, "No items.");
        body.appendChild(tr);
      }
    }

    function note(td, text) {
      if (!text) { return; }
      var small = document.createElement("small");
      small.textContent = text;
      td.appendChild(small);
    }

    // A failed preview must not leave the previous person's lists on screen as if they were the answer.
    function clear() {
      ["rec-preview-current", "rec-preview-edited"].forEach(function (id) {
        document.querySelector("#" + id + " tbody").textContent = "";
      });
      historyLine.textContent = "";
      lastKey = null;
      lastCurrent = null;
    }

    function markInvalid(names) {
      form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
      subject.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
      names.forEach(function (name) {
        var input = document.getElementById("id_" + name);
        if (input) { input.setAttribute("aria-invalid", "true"); }
      });
    }

    function run() {
      var data = new FormData(form);
      var key = [];
      subject.querySelectorAll("input, select, textarea").forEach(function (el) {
        data.append(el.name, el.value);
        key.push(el.name + "=" + el.value);
      });
      key = key.join("&");
      // The saved-tuning list only changes with the subject: ask for it again only then.
      var reuse = key === lastKey && lastCurrent !== null;
      data.append("include_current", reuse ? "0" : "1");
      var mine = ++seq;
      status.className = "rec-preview-status";
      status.textContent = "Computing…";
      fetch(section.dataset.previewUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken"), "Accept": "application/json" }
      }).then(function (resp) {
        return resp.json().then(function (json) { return { ok: resp.ok, json: json }; });
      }).then(function (res) {
        if (mine !== seq) { return; }
        if (!res.ok) {
          clear();
          markInvalid(Object.keys(res.json.errors || {}));
          status.className = "rec-preview-status rec-preview-error";
          status.textContent = (res.json.messages || []).join(" · ") || "Preview failed.";
          return;
        }
        markInvalid([]);
        if (!reuse) {
          lastKey = key;
          lastCurrent = res.json.current.items;
        }
        var cur = lastCurrent, ed = res.json.edited.items;
        fill("rec-preview-current", cur, ed);
        fill("rec-preview-edited", ed, cur);
        historyLine.textContent = res.json.history.length
          ? "Recent history: " + res.json.history.map(function (h) { return h.title + " (" + h.event + ")"; }).join(", ")
          : "No history: this person gets the non-personalized lists.";
        status.textContent = "Model: " + (res.json.edited.model_version || "none active") + ". Updated " +
          new Date().toLocaleTimeString() + ".";
      }).catch(function () {
        if (mine === seq) {
          clear();
          status.className = "rec-preview-status rec-preview-error";
          status.textContent = "Preview failed.";
        }
      });
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(run, 400);
    }

    document.getElementById("rec-preview-run").addEventListener("click", run);
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    subject.addEventListener("change", later);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
