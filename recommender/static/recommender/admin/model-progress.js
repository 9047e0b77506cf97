// Live progress of queued and running training jobs on the model registry pages: polls a small
// staff-only JSON view and reloads the page when a job finishes, so the new version shows up.
(function () {
  "use strict";
  function describe(job) {
    var p = job.progress || {};
    var parts = [job.name + " (" + job.kind + "): " + job.status];
    if (p.epoch) { parts.push("epoch " + p.epoch + (p.epochs ? "/" + p.epochs : "")); }
    if (p.loss !== undefined && p.loss !== null) { parts.push("loss " + Number(p.loss).toFixed(4)); }
    var metric = p.val_ndcg10 !== undefined ? p.val_ndcg10 : p["val_ndcg@10"];
    if (metric !== undefined && metric !== null) { parts.push("val NDCG@10 " + Number(metric).toFixed(4)); }
    if (p.eta_seconds) { parts.push("ETA " + Math.round(p.eta_seconds) + " s"); }
    return parts.join(" · ");
  }
  function init() {
    var box = document.getElementById("rec-progress");
    if (!box) { return; }
    var seenJobs = false;
    function poll() {
      fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          box.textContent = "";
          if (!data.jobs.length) {
            if (seenJobs) { window.location.reload(); return; }
            box.textContent = "No job running. Active model: " + (data.active || "none") + ".";
            return;
          }
          seenJobs = true;
          data.jobs.forEach(function (job) {
            var line = document.createElement("div");
            var epochs = (job.progress || {}).epochs;
            if (epochs) {
              var bar = document.createElement("progress");
              bar.max = epochs;
              bar.value = (job.progress || {}).epoch || 0;
              line.appendChild(bar);
              line.appendChild(document.createTextNode(" "));
            }
            line.appendChild(document.createTextNode(describe(job)));
            box.appendChild(line);
          });
          setTimeout(poll, 2000);
        })
        .catch(function () { box.textContent = "Progress unavailable."; setTimeout(poll, 5000); });
    }
    poll();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
