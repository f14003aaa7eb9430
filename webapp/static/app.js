/* Chime admin: local times, the notification bell, toasts, live run tables and engine card. Plain JS, no library. */
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

    return poll;
  }

  /* ------------------------------------------------------------ live tables */
  /* The run history of a task and the first page of the logs refresh themselves: rows are
     built with DOM calls and textContent only, mirroring the server-rendered ones. */

  function node(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = text;
    return el;
  }

  function capitalize(text) {
    text = String(text || "");
    return text.charAt(0).toUpperCase() + text.slice(1).toLowerCase();
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  /* The server's text of a <time> (the browser rewrites it in its own zone). */
  function utcText(date) {
    var text = date.getUTCFullYear() + "-" + pad(date.getUTCMonth() + 1) + "-" + pad(date.getUTCDate()) + " " +
      pad(date.getUTCHours()) + ":" + pad(date.getUTCMinutes());
    return text + (date.getUTCSeconds() ? ":" + pad(date.getUTCSeconds()) : "") + " UTC";
  }

  function timeNode(value, mode) {
    var date = value ? new Date(value) : null;
    if (!date || isNaN(date.getTime())) return node("span", "muted", "—");
    var el = node("time", "", mode === "relative" ? relative(date, Date.now()) : utcText(date));
    el.setAttribute("datetime", value);
    el.dataset.format = mode || "absolute";
    el.title = utcText(date);
    return el;
  }

  function badgeNode(status) {
    if (!status) return node("span", "muted", "—");
    return node("span", "badge badge-" + String(status).toLowerCase(), capitalize(String(status).replace(/_/g, " ")));
  }

  function enabledBadgeNode(enabled) {
    return enabled ? node("span", "badge badge-on", "Enabled") : node("span", "badge badge-off", "Disabled");
  }

  function humanSeconds(seconds) {
    var parts = [], units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
    seconds = Math.floor(seconds);
    for (var i = 0; i < units.length && parts.length < 2; i++) {
      var size = units[i][1];
      if (seconds >= size || (units[i][0] === "s" && !parts.length)) {
        parts.push(Math.floor(seconds / size) + " " + units[i][0]);
        seconds %= size;
      }
    }
    return parts.join(" ");
  }

  function durationText(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    return humanSeconds(ms / 1000);
  }

  /* Jinja's truncate(140): cut at a word boundary and end with "...", with its 5-character leeway. */
  function truncate(text, length) {
    text = String(text || "");
    if (text.length <= length + 5) return text;
    var cut = text.slice(0, length - 3), space = cut.lastIndexOf(" ");
    return (space >= 0 ? cut.slice(0, space) : cut) + "...";
  }

  function runState(run) {
    return run.status + "/" + run.attempt + "/" + (run.duration_ms === null || run.duration_ms === undefined ? "" : run.duration_ms);
  }

  var CELLS = {
    run: function (run, box) {
      var td = node("td"), link = node("a", "", "#" + run.id);
      link.href = box.dataset.runUrl + run.id;
      td.appendChild(link);
      return td;
    },
    task: function (run, box) {
      var td = node("td", "name");
      if (run.task_id) {
        var link = node("a", "", run.task_name);
        link.href = box.dataset.taskUrl + run.task_id;
        td.appendChild(link);
      } else {
        td.appendChild(document.createTextNode(run.task_name + " "));
        td.appendChild(node("span", "muted small", "(deleted)"));
      }
      return td;
    },
    outcome: function (run) { var td = node("td"); td.appendChild(badgeNode(run.status)); return td; },
    trigger: function (run) { return node("td", "", capitalize(run.trigger)); },
    attempt: function (run) { return node("td", "num", String(run.attempt)); },
    scheduled: function (run) { var td = node("td", "nowrap"); td.appendChild(timeNode(run.scheduled_for)); return td; },
    started: function (run) { var td = node("td", "nowrap"); td.appendChild(timeNode(run.started_at)); return td; },
    duration: function (run) { return node("td", "num nowrap", durationText(run.duration_ms)); },
    message: function (run) { return node("td", "msg", truncate(run.message, 140)); }
  };

  function runRow(run, box, columns) {
    var tr = node("tr");
    tr.dataset.runId = String(run.id);
    tr.dataset.runState = runState(run);
    columns.forEach(function (column) { tr.appendChild(CELLS[column](run, box)); });
    renderTimes(tr);
    return tr;
  }

  /* Put the wanted rows in order, moving as few existing nodes as possible (keeps focus on links). */
  function syncRows(tbody, wanted) {
    wanted.forEach(function (tr, index) {
      var current = tbody.children[index];
      if (current !== tr) tbody.insertBefore(tr, current || null);
    });
    while (tbody.children.length > wanted.length) tbody.removeChild(tbody.lastElementChild);
  }

  function updatePagination(nav, box, total) {
    if (!nav) return;
    var perPage = parseInt(box.dataset.perPage, 10) || 20;
    var noun = box.dataset.noun || "items";
    var pages = Math.max(1, Math.ceil(total / perPage));
    var summary = nav.firstElementChild;
    if (summary) {
      summary.textContent = total ? "Showing 1–" + Math.min(perPage, total) + " of " + total + " " + noun : "No " + noun;
    }
    var links = nav.querySelector(".pages");
    if (pages <= 1) { if (links) links.remove(); return; }
    if (!links) {
      links = node("span", "pages");
      var prev = node("span", "btn btn-sm disabled", "← Previous");
      prev.setAttribute("aria-disabled", "true");
      var next = node("a", "btn btn-sm", "Next →");
      next.href = box.dataset.nextPageUrl;
      next.rel = "next";
      links.appendChild(prev);
      links.appendChild(node("span", "btn btn-sm disabled", ""));
      links.appendChild(next);
      links.children[1].setAttribute("aria-current", "page");
      nav.appendChild(links);
    }
    var current = links.querySelector("[aria-current]");
    if (current) current.textContent = "Page 1 of " + pages;
  }

  function liveRuns(box) {
    var tbody = box.querySelector("tbody");
    if (!tbody) return null;
    var columns = (box.dataset.columns || "").split(/\s+/).filter(function (c) { return CELLS[c]; });
    var busy = false;

    function apply(data) {
      var existing = {};
      Array.prototype.forEach.call(tbody.querySelectorAll("tr[data-run-id]"), function (tr) { existing[tr.dataset.runId] = tr; });
      var wanted = data.results.map(function (run) {
        var tr = existing[String(run.id)];
        return tr && tr.dataset.runState === runState(run) ? tr : runRow(run, box, columns);
      });
      if (!wanted.length) {
        var empty = tbody.querySelector("td.empty");
        if (empty) return;
        var td = node("td", "empty", box.dataset.emptyText || "");
        td.colSpan = columns.length;
        var tr = node("tr");
        tr.appendChild(td);
        wanted = [tr];
      }
      syncRows(tbody, wanted);
      updatePagination(box.querySelector("nav.pagination"), box, data.count);
    }

    return function poll() {
      if (busy) return;
      busy = true;
      getJSON(box.dataset.pollUrl)
        .then(function (data) { if (data && data.results) apply(data); })
        .catch(function () { /* try again on the next tick */ })
        .then(function () { busy = false; });
    };
  }

  function replaceContent(el, child) {
    if (!el) return;
    while (el.firstChild) el.removeChild(el.firstChild);
    if (child) el.appendChild(child);
  }

  function liveTask(box) {
    var busy = false, lastNext = "", lastTask = "";

    function nextRuns(enabled, times) {
      var key = enabled + " " + times.join(" ");
      var el = document.querySelector("[data-task-next-runs]");
      if (!el || key === lastNext) return;
      lastNext = key;
      var fragment = document.createDocumentFragment();
      if (!enabled) fragment.appendChild(node("p", "muted", "The task is disabled" + (times.length ? "; when enabled it would run at:" : ".")));
      if (times.length) {
        var list = node("ol", "list-plain"), now = Date.now();
        times.forEach(function (at) {
          var item = node("li");
          item.appendChild(timeNode(at));
          item.appendChild(node("span", "muted small", relative(new Date(at), now)));
          list.appendChild(item);
        });
        fragment.appendChild(list);
      } else if (enabled) {
        fragment.appendChild(node("p", "muted", "No upcoming runs."));
      }
      replaceContent(el, fragment);
      renderTimes(el);
    }

    function apply(data) {
      var task = data.task;
      nextRuns(task.enabled, data.next_runs || []);
      var key = [task.status, task.enabled, task.last_run_at, task.last_status].join(" ");
      if (key === lastTask) return;
      lastTask = key;
      replaceContent(document.querySelector("[data-task-status]"), badgeNode(task.status));
      replaceContent(document.querySelector("[data-task-enabled]"), enabledBadgeNode(task.enabled));
      var toggle = document.querySelector("[data-task-toggle]");
      if (toggle) toggle.textContent = task.enabled ? "Disable" : "Enable";
      var lastRun = document.querySelector("[data-task-last-run]");
      if (lastRun) {
        var fragment = document.createDocumentFragment();
        fragment.appendChild(timeNode(task.last_run_at, "relative"));
        if (task.last_status) {
          fragment.appendChild(document.createTextNode(" "));
          fragment.appendChild(badgeNode(task.last_status));
        }
        replaceContent(lastRun, fragment);
        renderTimes(lastRun);
      }
    }

    return function poll() {
      if (busy) return;
      busy = true;
      getJSON(box.dataset.pollUrl)
        .then(function (data) { if (data && data.task) apply(data); })
        .catch(function () { /* try again on the next tick */ })
        .then(function () { busy = false; });
    };
  }

  /* The dashboard's engine card and red banner follow the engine: rebuilt like the server renders them. */
  function liveEngine(box) {
    var busy = false, lastState = "";
    var banner = document.querySelector("[data-engine-alert]");

    function state(ok, text) { return node("span", ok ? "ok" : "bad", text); }

    function scheduler(data) {
      var fragment = document.createDocumentFragment();
      fragment.appendChild(state(data.alive, data.alive ? "Running" : "Not running"));
      if (data.last_heartbeat) {
        var beat = node("span", "muted small", "· beat ");
        beat.appendChild(timeNode(data.last_heartbeat, "relative"));
        fragment.appendChild(document.createTextNode(" "));
        fragment.appendChild(beat);
      }
      return fragment;
    }

    function workers(data) {
      var fragment = document.createDocumentFragment();
      if (data.count) fragment.appendChild(state(true, data.count + " running"));
      else fragment.appendChild(state(false, data.count === null ? "Unknown" : "None"));
      if (data.names.length) {
        var names = node("span", "muted small", "· " + truncate(data.names.join(", "), 40));
        names.title = data.names.join(", ");
        fragment.appendChild(document.createTextNode(" "));
        fragment.appendChild(names);
      }
      return fragment;
    }

    function queues(depths) {
      if (depths === null) return state(false, "Redis unreachable");
      var list = node("ul", "queue-list");
      Object.keys(depths).forEach(function (name) {
        var item = node("li", "", name + ": ");
        item.appendChild(node("strong", "", String(depths[name])));
        list.appendChild(item);
      });
      return list;
    }

    function reconciler(lastRunAt) {
      if (!lastRunAt) return node("span", "muted", "no run yet");
      var fragment = document.createDocumentFragment();
      fragment.appendChild(document.createTextNode("last run "));
      fragment.appendChild(timeNode(lastRunAt, "relative"));
      return fragment;
    }

    function alerts(messages) {
      if (!banner) return;
      var list = banner.querySelector("[data-engine-alerts]");
      replaceContent(list, null);
      messages.forEach(function (message) { list.appendChild(node("li", "", message)); });
      banner.hidden = !messages.length;
    }

    function apply(data) {
      var key = JSON.stringify(data);
      if (key === lastState) return;
      lastState = key;
      alerts(data.alerts);
      replaceContent(box.querySelector("[data-engine-scheduler]"), scheduler(data.scheduler));
      replaceContent(box.querySelector("[data-engine-workers]"), workers(data.workers));
      replaceContent(box.querySelector("[data-engine-queues]"), queues(data.queues));
      replaceContent(box.querySelector("[data-engine-reconciler]"), reconciler(data.reconciler.last_run_at));
      var unread = box.querySelector("[data-engine-unread]"), count = data.notifications.unread;
      if (unread) unread.textContent = count + " notification" + (count === 1 ? "" : "s");
      renderTimes(box);
    }

    return function poll() {
      if (busy) return;
      busy = true;
      getJSON(box.dataset.pollUrl)
        .then(function (data) { if (data && data.alerts) apply(data); })
        .catch(function () { /* try again on the next tick */ })
        .then(function () { busy = false; });
    };
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        return response.ok && type.indexOf("json") !== -1 ? response.json() : null;
      });
  }

  /* Server-rendered parts of the page ([data-live-fragment="name"]) are refreshed by fetching the page
     again and swapping in the new version of each part that changed (a part left unchanged keeps focus). */
  function liveFragments() {
    var parts = document.querySelectorAll("[data-live-fragment]");
    if (!parts.length) return null;
    var served = SERVED, busy = false;

    function apply(html) {
      var fresh = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live-fragment]").forEach(function (el) {
        var name = el.dataset.liveFragment;
        var next = fresh.querySelector('[data-live-fragment="' + name + '"]');
        if (!next || served[name] === next.innerHTML) return;
        served[name] = next.innerHTML;
        el.innerHTML = next.innerHTML;
        if (next.hidden !== el.hidden) el.hidden = next.hidden;
        el.querySelectorAll("table").forEach(labelTable);
        renderTimes(el);
      });
      scrollCharts();
    }

    return function refresh() {
      if (busy) return;
      busy = true;
      fetch(window.location.href, { credentials: "same-origin", cache: "no-store",
                                    headers: { Accept: "text/html", "X-Chime-Fragment": "1" } })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          return response.ok && !response.redirected && type.indexOf("text/html") !== -1 ? response.text() : null;
        })
        .then(function (html) { if (html) apply(html); })
        .catch(function () { /* try again on the next event or tick */ })
        .then(function () { busy = false; });
    };
  }

  /* Every live part of the page follows the server's push stream (Server-Sent Events from /events):
     an event refreshes the parts within about a second. Without EventSource, or when the stream
     fails again and again (or the server is at its maximum of streams), the page polls every POLL_MS
     instead and tries the stream again after PUSH_RETRY_MS. */
  var PUSH_SAFETY_MS = 30000, PUSH_RETRY_MS = 60000, PUSH_FAILURES = 3, BATCH_MS = 150;

  function startLive() {
    var updates = [];
    document.querySelectorAll("[data-live-runs]").forEach(function (box) { var p = liveRuns(box); if (p) updates.push(p); });
    document.querySelectorAll("[data-live-task]").forEach(function (box) { updates.push(liveTask(box)); });
    document.querySelectorAll("[data-live-engine]").forEach(function (box) { updates.push(liveEngine(box)); });
    var fragments = liveFragments();
    if (fragments) updates.push(fragments);
    var bell = startBell();
    if (bell) updates.push(bell);
    if (!updates.length) return;

    var pending = null, pollTimer = null, source = null, failures = 0;
    var streamUrl = (document.querySelector("[data-live-stream]") || {}).dataset;
    streamUrl = streamUrl && streamUrl.liveStream;
    document.documentElement.dataset.live = "starting";

    function refresh() {
      pending = null;
      if (!document.hidden) updates.forEach(function (update) { update(); });
    }
    function soon() { if (!pending) pending = setTimeout(refresh, BATCH_MS); }

    function poll(ms) {
      if (pollTimer) clearInterval(pollTimer);
      pollTimer = setInterval(refresh, ms);
    }

    function fallBack() {
      if (source) source.close();
      source = null;
      document.documentElement.dataset.live = "polling";
      poll(POLL_MS);
      if (streamUrl && window.EventSource) setTimeout(push, PUSH_RETRY_MS);
    }

    function push() {
      failures = 0;
      source = new EventSource(streamUrl);
      source.addEventListener("open", function () {
        failures = 0;
        document.documentElement.dataset.live = "push";
        poll(PUSH_SAFETY_MS);
        soon(); // catch up on whatever happened while the stream was not open
      });
      source.addEventListener("change", soon);
      source.addEventListener("engine", soon);
      source.addEventListener("error", function () {
        failures += 1;
        if (source && (source.readyState === EventSource.CLOSED || failures >= PUSH_FAILURES)) fallBack();
      });
    }

    if (streamUrl && window.EventSource) push(); else fallBack();
    document.addEventListener("visibilitychange", function () { if (!document.hidden) soon(); });
  }

  /* Phone width: app.css stacks table rows as cards, each cell led by its column's name. Copy the
     header texts into the cells' data-label, now and whenever rows are added (live tables). */
  function labelTable(table) {
    var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      var column = 0;
      Array.prototype.forEach.call(tr.children, function (td) {
        if (heads[column] && !td.hasAttribute("data-label") && !td.classList.contains("empty")) td.dataset.label = heads[column];
        column += td.colSpan || 1;
      });
    });
  }

  function labelTables() {
    document.querySelectorAll(".table-wrap > table").forEach(function (table) {
      labelTable(table);
      if (window.MutationObserver) {
        new MutationObserver(function () { labelTable(table); }).observe(table, { childList: true, subtree: true });
      }
    });
  }

  /* On narrow screens the chart scrolls sideways: show the latest hours first. */
  function scrollCharts() {
    document.querySelectorAll(".chart-wrap").forEach(function (wrap) { wrap.scrollLeft = wrap.scrollWidth; });
  }

  function focusErrors() {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  }

  /* The fragments as the server sent them, before renderTimes rewrote their times. */
  var SERVED = {};
  function captureFragments() {
    document.querySelectorAll("[data-live-fragment]").forEach(function (el) { SERVED[el.dataset.liveFragment] = el.innerHTML; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    captureFragments();
    labelTables();
    showZone();
    renderTimes(document);
    setInterval(function () { renderTimes(document); }, 30000);
    startLive();
    scrollCharts();
    focusErrors();
  });
})();
