/* Chime admin: local times, the notification bell and toasts. Plain JS, no library. */
(function () {
  "use strict";

  var ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  var POLL_MS = 4000;
  var TOAST_MS = 10000;
  var dateTime = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  var dateTimeSeconds = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var full = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
  var hourOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

  function span(seconds) {
    if (seconds < 3600) return Math.max(1, Math.round(seconds / 60)) + " min";
    if (seconds < 86400) {
      var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
      return h + " h" + (m ? " " + m + " min" : "");
    }
    if (seconds >= 365 * 86400) return (seconds / (365.25 * 86400)).toFixed(1).replace(/\.0$/, "") + " y";
    if (seconds >= 30 * 86400) return Math.round(seconds / 86400) + " d";
    var d = Math.floor(seconds / 86400), hours = Math.floor((seconds % 86400) / 3600);
    return d + " d" + (hours ? " " + hours + " h" : "");
  }

  function relative(date, now) {
    var diff = (date.getTime() - now) / 1000;
    if (Math.abs(diff) < 45) return diff > 0 ? "in a few seconds" : "just now";
    return diff > 0 ? "in " + span(diff) : span(-diff) + " ago";
  }

  /* Rewrite every server-rendered UTC time in the browser's time zone. */
  function renderTimes(root) {
    var now = Date.now();
    root.querySelectorAll("time[data-format]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      el.title = full.format(date);
      if (el.dataset.format === "relative") el.textContent = relative(date, now);
      else el.textContent = (date.getSeconds() ? dateTimeSeconds : dateTime).format(date);
    });
    root.querySelectorAll("[data-hour]").forEach(function (el) {
      var date = new Date(el.dataset.hour);
      if (!isNaN(date.getTime())) el.textContent = hourOnly.format(date);
    });
    root.querySelectorAll("title[data-hour-title]").forEach(function (el) {
      var start = new Date(el.dataset.hourTitle);
      if (isNaN(start.getTime())) return;
      var end = new Date(start.getTime() + 3600 * 1000);
      el.textContent = hourOnly.format(start) + "–" + hourOnly.format(end) + ": " + el.dataset.summary;
    });
  }

  function showZone() {
    document.querySelectorAll("[data-tz], [data-zone-name]").forEach(function (el) { el.textContent = ZONE; });
    document.querySelectorAll("input[data-browser-zone]").forEach(function (el) { el.value = ZONE; });
  }

  /* ---------------------------------------------------------------- toasts */
  function toast(notification, listUrl) {
    var box = document.querySelector("[data-toasts]");
    if (!box) return;
    var item = document.createElement("div");
    item.className = "toast level-" + String(notification.level || "info").toLowerCase();
    var body = document.createElement("div");
    body.className = "toast-body";
    var title = document.createElement("span");
    title.className = "toast-title";
    title.textContent = notification.title;
    body.appendChild(title);
    if (notification.message) {
      var message = document.createElement("span");
      message.textContent = notification.message.length > 140 ? notification.message.slice(0, 139) + "…" : notification.message;
      body.appendChild(message);
      body.appendChild(document.createElement("br"));
    }
    var link = document.createElement("a");
    link.href = listUrl;
    link.textContent = "View notifications";
    body.appendChild(link);
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss notification");
    close.textContent = "×";
    close.addEventListener("click", function () { item.remove(); });
    item.appendChild(body);
    item.appendChild(close);
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, TOAST_MS);
  }

  /* ---------------------------------------------------------------- bell */
  function startBell() {
    var bell = document.querySelector("[data-bell]");
    if (!bell) return;
    var countEl = bell.querySelector("[data-bell-count]");
    var labelEl = bell.querySelector("[data-bell-label]");
    var latest = parseInt(bell.dataset.latestId || "0", 10) || 0;
    var shown = parseInt(countEl.textContent || "0", 10) || 0;
    var busy = false;

    function setCount(count) {
      countEl.textContent = count > 99 ? "99+" : String(count);
      countEl.hidden = count === 0;
      labelEl.textContent = count + " unread";
      bell.dataset.count = String(count);
      if (count > shown) {
        countEl.classList.remove("bump");
        void countEl.offsetWidth; // restart the animation
        countEl.classList.add("bump");
      }
      shown = count;
    }

    function poll() {
      if (busy) return;
      busy = true;
      fetch(bell.dataset.pollUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) return;
          setCount(data.count);
          var fresh = data.results.filter(function (n) { return n.id > latest; });
          fresh.reverse().slice(-3).forEach(function (n) { toast(n, bell.dataset.listUrl); });
          data.results.forEach(function (n) { latest = Math.max(latest, n.id); });
        })
        .catch(function () { /* offline for a moment: try again on the next tick */ })
        .then(function () { busy = false; });
    }

    setInterval(poll, POLL_MS);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
  }

  /* On narrow screens the chart scrolls sideways: show the latest hours first. */
  function scrollCharts() {
    document.querySelectorAll(".chart-wrap").forEach(function (wrap) { wrap.scrollLeft = wrap.scrollWidth; });
  }

  function focusErrors() {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    showZone();
    renderTimes(document);
    setInterval(function () { renderTimes(document); }, 30000);
    startBell();
    scrollCharts();
    focusErrors();
  });
})();
