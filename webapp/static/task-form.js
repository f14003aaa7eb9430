/* Chime admin: the task form. Shows the fields of the chosen schedule type and job,
   and previews the next runs while typing. Without JS every field stays visible and
   the server ignores the fields of the other schedule types and jobs. */
(function () {
  "use strict";

  var DEBOUNCE_MS = 300;

  function human(seconds) {
    var units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]], parts = [];
    for (var i = 0; i < units.length && parts.length < 3; i++) {
      var amount = Math.floor(seconds / units[i][1]);
      if (amount) { parts.push(amount + " " + units[i][0]); seconds -= amount * units[i][1]; }
    }
    return parts.join(" ");
  }

  function formatter(zone) {
    var options = { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
    try { return new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: zone }, options)); }
    catch (e) { return new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: "UTC" }, options)); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("[data-task-form]");
    if (!form) return;
    var jobSelect = form.querySelector("#f-job");
    var jobHint = form.querySelector("[data-job-description]");
    var zoneInput = form.querySelector("#f-timezone");
    var intervalInput = form.querySelector("#f-interval_seconds");
    var intervalHuman = form.querySelector("[data-interval-human]");
    var panel = form.querySelector("[data-preview]");
    var descEl = panel.querySelector("[data-preview-description]");
    var errorEl = panel.querySelector("[data-preview-error]");
    var listEl = panel.querySelector("[data-preview-times]");
    var zoneEl = panel.querySelector("[data-preview-zone]");
    var fromInput = panel.querySelector("[data-preview-from]");
    var myZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    var timer = null, sequence = 0;

    function scheduleType() {
      var checked = form.querySelector("input[name=schedule_type]:checked");
      return checked ? checked.value : "";
    }

    function showJob() {
      var job = jobSelect.value;
      form.querySelectorAll("[data-job-args]").forEach(function (box) {
        var active = box.dataset.jobArgs === job;
        box.hidden = !active;
        box.querySelectorAll("input, textarea, select").forEach(function (el) { el.disabled = !active; });
      });
      var option = jobSelect.selectedOptions[0];
      jobHint.textContent = (option && option.dataset.description) || "What the task runs.";
    }

    function showSchedule() {
      var type = scheduleType();
      form.querySelectorAll("[data-schedule-for]").forEach(function (part) {
        var active = part.dataset.scheduleFor.split(" ").indexOf(type) !== -1;
        part.hidden = !active;
        part.querySelectorAll("input, select, textarea").forEach(function (el) { el.disabled = !active; });
      });
    }

    function showInterval() {
      var seconds = parseInt(intervalInput.value, 10);
      intervalHuman.textContent = seconds > 0 ? "Runs every " + human(seconds) + "." : "";
    }

    function render(description, error, times, zone) {
      var format = formatter(zone);
      descEl.textContent = description || "";
      errorEl.textContent = error || "";
      listEl.replaceChildren();
      (times || []).forEach(function (iso) {
        var item = document.createElement("li");
        var time = document.createElement("time");
        time.dateTime = iso;
        time.textContent = format.format(new Date(iso));
        item.appendChild(time);
        listEl.appendChild(item);
      });
      if (!error && (!times || !times.length)) {
        var none = document.createElement("li");
        none.textContent = "No upcoming runs.";
        listEl.appendChild(none);
      }
      zoneEl.textContent = format.resolvedOptions().timeZone;
    }

    var MISSING = { CRON: "Type a cron expression to see when it runs.",
                    INTERVAL: "Enter an interval to see when it runs.",
                    ONE_TIME: "Choose a date and time to see when it runs." };

    function hint(type) {
      descEl.textContent = MISSING[type];
      errorEl.textContent = "";
      listEl.replaceChildren();
    }

    function previewUrl(type, zone) {
      var required = { CRON: "cron", INTERVAL: "interval_seconds", ONE_TIME: "run_at" }[type];
      if (!form.elements[required].value.trim()) return null;
      if (type === "CRON") {
        var cron = form.elements.cron.value.trim();
        var cronParams = new URLSearchParams({ cron: cron, timezone: zone, count: "5" });
        if (fromInput.value.trim()) cronParams.set("from", fromInput.value.trim());
        return form.dataset.cronPreviewUrl + "?" + cronParams;
      }
      var params = new URLSearchParams({ schedule_type: type, timezone: zone, task: form.dataset.taskId || "" });
      ["run_at", "interval_seconds", "start_at", "end_at"].forEach(function (name) {
        var el = form.elements[name];
        if (el && !el.disabled && el.value) params.set(name, el.value);
      });
      if (fromInput.value.trim()) params.set("from", fromInput.value.trim());
      return form.dataset.previewUrl + "?" + params;
    }

    function updatePreview() {
      var type = scheduleType();
      var zone = zoneInput.value.trim() || "UTC";
      panel.hidden = !type;
      if (!type) return;
      var url = previewUrl(type, zone);
      var mine = ++sequence;
      zoneEl.textContent = zone;
      if (!url) { hint(type); return; }
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.json().then(function (data) { return { ok: response.ok, data: data }; });
        })
        .then(function (answer) {
          if (mine !== sequence) return;
          var data = answer.data;
          if (!answer.ok) {
            var reasons = data.fields ? Object.keys(data.fields).map(function (k) {
              return (k === "from" ? "Preview from: " : "") + data.fields[k];
            }) : [];
            render("", reasons.join(" ") || data.message || "The schedule is not valid.", [], zone);
            return;
          }
          render(data.description, data.error, data.next_runs, zone);
        })
        .catch(function () { if (mine === sequence) render("", "The preview is unavailable right now.", [], zone); });
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(updatePreview, DEBOUNCE_MS);
    }

    jobSelect.addEventListener("change", showJob);
    form.querySelectorAll("input[name=schedule_type]").forEach(function (radio) {
      radio.addEventListener("change", function () { showSchedule(); updatePreview(); });
    });
    ["cron", "interval_seconds", "run_at", "start_at", "end_at", "timezone"].forEach(function (name) {
      var el = form.elements[name];
      if (el) { el.addEventListener("input", later); el.addEventListener("change", later); }
    });
    fromInput.addEventListener("input", later);
    intervalInput.addEventListener("input", showInterval);

    var mineButton = form.querySelector("[data-use-my-zone]");
    mineButton.hidden = false;
    mineButton.textContent = "Use " + myZone;
    mineButton.addEventListener("click", function () { zoneInput.value = myZone; updatePreview(); });

    showJob();
    showSchedule();
    showInterval();
    updatePreview();
  });
})();
