/* ciaoweb live updates: one websocket to /ws/events/ (the session cookie authenticates
 * it), reconnecting with exponential backoff, dispatching each
 * {"type": "lease.updated"|"instance.updated"|"attachment.updated"|"host.updated"|
 * "operation.updated", "data": {...}} message to the handlers pages register with
 * CiaoLive.on(type, fn).
 * Plain script, no build step, no dependencies. */
(function () {
  "use strict";

  var handlers = {};
  var socket = null;
  var attempt = 0;
  var pingTimer = null;
  var MAX_DELAY_MS = 30000;
  var PING_EVERY_MS = 25000;
  var statusEl = document.getElementById("live-status");

  function setStatus(state, text) {
    if (!statusEl) return;
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function on(type, handler) {
    (handlers[type] = handlers[type] || []).push(handler);
  }

  function dispatch(message) {
    var list = (handlers[message.type] || []).concat(handlers["*"] || []);
    list.forEach(function (handler) {
      try { handler(message.data || {}, message.type); } catch (err) { console.error(err); }
    });
  }

  function socketUrl() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + "/ws/events/";
  }

  function scheduleReconnect() {
    // Backoff with jitter so many tabs don't reconnect in lockstep after a restart.
    var delay = Math.min(MAX_DELAY_MS, 500 * Math.pow(2, attempt)) * (0.75 + Math.random() / 2);
    attempt += 1;
    setStatus("reconnecting", "reconnecting…");
    window.setTimeout(connect, delay);
  }

  function connect() {
    setStatus("connecting", "connecting…");
    socket = new WebSocket(socketUrl());
    socket.onopen = function () {
      attempt = 0;
      setStatus("live", "live");
      document.dispatchEvent(new CustomEvent("ciao:live-open"));
      pingTimer = window.setInterval(function () {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, PING_EVERY_MS);
    };
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (err) { return; }
      if (message && message.type && message.type !== "pong") dispatch(message);
    };
    socket.onclose = function (event) {
      window.clearInterval(pingTimer);
      if (event.code === 4401) { setStatus("offline", "not logged in"); return; }
      scheduleReconnect();
    };
  }

  /* Re-render one server-side partial: the element with data-live-fragment="<name>" gets
   * the output of the current URL with ?fragment=<name>. Calls within `wait` ms coalesce. */
  var pending = {};
  function refreshFragment(name, wait) {
    if (pending[name]) return;
    pending[name] = window.setTimeout(function () {
      delete pending[name];
      var el = document.querySelector('[data-live-fragment="' + name + '"]');
      if (!el) return;
      var url = new URL(window.location.href);
      url.searchParams.set("fragment", name);
      fetch(url.toString(), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) el.innerHTML = html; });
    }, wait === undefined ? 250 : wait);
  }

  /* Set the text of [data-field=<name>] inside `root` (only when it changed). */
  function setField(root, name, value) {
    var el = root.querySelector('[data-field="' + name + '"]');
    var text = value === null || value === undefined || value === "" ? "—" : String(value);
    if (el && el.textContent !== text) el.textContent = text;
    return el;
  }

  var BUSY = ["pending", "provisioning", "migrating", "deleting"];
  /* A state badge: class state-<state>, and a spinner while the agent is at work. */
  function setState(el, state) {
    if (!el) return;
    el.className = el.className.replace(/\bstate-\S+/g, "").trim() + " state-" + state;
    el.textContent = "";
    if (BUSY.indexOf(state) >= 0) {
      var spinner = document.createElement("span");
      spinner.className = "spinner";
      spinner.setAttribute("aria-hidden", "true");
      el.appendChild(spinner);
    }
    el.appendChild(document.createTextNode(state));
  }

  /* Lease expiry countdowns: every <time data-countdown datetime=...> ticks each second. */
  function formatRemaining(iso) {
    if (!iso) return "—";
    var seconds = Math.floor((new Date(iso).getTime() - Date.now()) / 1000);
    if (isNaN(seconds)) return "—";
    if (seconds <= 0) return "expired";
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) return "in " + h + "h " + (m < 10 ? "0" : "") + m + "m";
    return "in " + m + "m " + (s < 10 ? "0" : "") + s + "s";
  }
  function tickCountdowns() {
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var text = formatRemaining(el.getAttribute("datetime"));
      if (el.textContent !== text) el.textContent = text;
    });
  }
  window.setInterval(tickCountdowns, 1000);

  /* Forms with data-confirm ask before submitting (delete, evacuate). */
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  window.CiaoLive = {
    on: on,
    refreshFragment: refreshFragment,
    setField: setField,
    setState: setState,
    formatRemaining: formatRemaining,
  };
  if ("WebSocket" in window) connect(); else setStatus("offline", "no live updates");
})();
