// The console's few behaviours that need a script: keyboard shortcuts and the clocks'
// countdown. Everything works without it; it only saves keystrokes and reloads.
(function () {
  "use strict";

  function typing(target) {
    const tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function rows() {
    return Array.from(document.querySelectorAll("table.queue tbody tr"));
  }

  function focusRow(step) {
    const all = rows();
    if (!all.length) return;
    const current = all.findIndex(function (row) { return row.classList.contains("focused"); });
    const next = Math.max(0, Math.min(all.length - 1, current + step));
    all.forEach(function (row) { row.classList.remove("focused"); });
    all[next].classList.add("focused");
    const link = all[next].querySelector("a");
    if (link) link.focus();
  }

  let pending = "";
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const key = event.key;
    if (key === "/") {
      const search = document.getElementById("search-number");
      if (search) { event.preventDefault(); search.focus(); }
    } else if (pending === "g" && key === "q") {
      window.location.href = "/console/";
    } else if (key === "j") {
      focusRow(1);
    } else if (key === "k") {
      focusRow(-1);
    } else if (key === "r") {
      const reply = document.getElementById("reply-text");
      if (reply) { event.preventDefault(); reply.focus(); }
    }
    pending = key === "g" ? "g" : "";
  });

  function units(seconds) {
    const lang = document.documentElement.lang;
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const u = lang === "en" ? ["d", "h", "min"] : ["天", "小时", "分钟"];
    if (d) return d + u[0] + " " + h + u[1];
    if (h) return h + u[1] + " " + m + u[2];
    return m + u[2];
  }

  // Count from the server's time when the page was made, not the browser's clock.
  const loaded = Date.now();
  const serverNow = Date.parse(document.body.dataset.now || "") || loaded;

  function tick() {
    const now = serverNow + (Date.now() - loaded);
    document.querySelectorAll(".countdown[data-due]").forEach(function (node) {
      const left = (Date.parse(node.dataset.due) - now) / 1000;
      const pattern = left >= 0 ? node.dataset.left : node.dataset.over;
      node.textContent = pattern.replace("{}", units(Math.abs(left)));
      node.closest(".clock").classList.toggle("overdue", left < 0);
    });
  }
  if (document.querySelector(".countdown[data-due]")) setInterval(tick, 30000);
})();
