/* ciaoweb live updates: one websocket to /ws/events/ (the session cookie authenticates
 * it), reconnecting with exponential backoff, dispatching each
 * {"type": "lease.updated"|"instance.updated"|"attachment.updated"|"host.updated"|
 * "operation.updated", "data": {...}} message to the handlers pages register with
 * CiaoLive.on(type, fn).
 * Messages sent while the socket was down are lost, so after a reconnect the page
 * refetches every server-side fragment it shows ([data-live-fragment]) and calls the
 * handlers registered with CiaoLive.onResync(fn); #live-status says "resyncing…" until
 * that is done, and body[data-resyncs] counts the resyncs.
 * Also here: the pending state and double-submit guard of every form that posts.
 * Plain script, no build step, no dependencies. */
(function () {
  "use strict";

  var handlers = {};
  var resyncHandlers = [];
  var socket = null;
  var attempt = 0;
  var opened = 0;
  var resyncs = 0;
  var syncing = false;
  var missedWhileSyncing = false;
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

  function onResync(handler) {
    resyncHandlers.push(handler);
  }

  function dispatch(message) {
    if (syncing) missedWhileSyncing = true;
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
    if (!opened) setStatus("connecting", "connecting…");  // later: "reconnecting…" stays
    var current = (socket = new WebSocket(socketUrl()));
    socket.onopen = function () {
      // Down before (a drop, or failed first attempts): the page may have missed changes.
      var missed = opened > 0 || attempt > 0;
      attempt = 0;
      opened += 1;
      if (missed) resync(current); else setStatus("live", "live");
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

  /* Re-render one server-side partial now: the element with data-live-fragment="<name>"
   * gets the output of the current URL with ?fragment=<name>. Resolves to the answer's
   * HTTP status (0 when the server was not reached). Only the latest request of a
   * fragment is applied (answers can overtake each other), and never over a form that
   * is being submitted. */
  var requested = {};
  function loadFragment(name) {
    var el = document.querySelector('[data-live-fragment="' + name + '"]');
    if (!el) return Promise.resolve(0);
    var ticket = (requested[name] = (requested[name] || 0) + 1);
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", name);
    return fetch(url.toString(), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) return response.status;
        return response.text().then(function (html) {
          if (ticket === requested[name] && !el.querySelector("form[data-submitting]")) el.innerHTML = html;
          return response.status;
        });
      })
      .catch(function () { return 0; });
  }

  /* The same, soon: calls within `wait` ms (250 by default) coalesce into one request. */
  var scheduled = {};
  function refreshFragment(name, wait) {
    if (!scheduled[name]) {
      scheduled[name] = new Promise(function (resolve) {
        window.setTimeout(function () {
          delete scheduled[name];
          resolve(loadFragment(name));
        }, wait === undefined ? 250 : wait);
      });
    }
    return scheduled[name];
  }

  function loadAllFragments() {
    var names = Array.prototype.map.call(
      document.querySelectorAll("[data-live-fragment]"),
      function (el) { return el.dataset.liveFragment; }
    );
    return Promise.all(names.map(loadFragment)).then(function (statuses) {
      var byName = {};
      names.forEach(function (name, i) { byName[name] = statuses[i]; });
      return byName;
    });
  }

  /* After a reconnect: what the page shows, fetched again, then the pages' own handlers
   * (given {fragment name: HTTP status}). A message that arrived meanwhile may have been
   * overwritten by an older rendering, so then the fragments are fetched once more. */
  function resync(current) {
    syncing = true;
    missedWhileSyncing = false;
    setStatus("syncing", "resyncing…");
    loadAllFragments()
      .then(function (statuses) {
        resyncHandlers.forEach(function (handler) {
          try { handler(statuses); } catch (err) { console.error(err); }
        });
        return missedWhileSyncing ? loadAllFragments() : null;
      })
      .then(function () {
        syncing = false;
        resyncs += 1;
        document.body.dataset.resyncs = String(resyncs);
        if (socket === current && current.readyState === WebSocket.OPEN) setStatus("live", "live");
      });
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

  /* Forms that post: those with data-confirm ask first (delete, evacuate); then the form
   * is pending until the next page arrives: aria-busy, its submit buttons disabled and
   * relabelled (data-pending, else the label and "…"), and any further submit of it
   * ignored. The server acts once on a form posted twice as well (its form_token). */
  function setPending(form, pending) {
    if (pending) form.dataset.submitting = "true"; else delete form.dataset.submitting;
    if (pending) form.setAttribute("aria-busy", "true"); else form.removeAttribute("aria-busy");
    form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (button) {
      if (pending) {
        button.dataset.label = button.textContent;
        button.textContent = button.dataset.pending || button.textContent.trim() + "…";
      } else if (button.dataset.label !== undefined) {
        button.textContent = button.dataset.label;
      }
      button.disabled = pending;
    });
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
    if (form.dataset.submitting || event.defaultPrevented) {
      event.preventDefault();
      return;
    }
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    setPending(form, true);
  });
  // Back to a page kept in the browser's cache: its forms are not pending any more.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-submitting]").forEach(function (form) { setPending(form, false); });
  });

  window.CiaoLive = {
    on: on,
    onResync: onResync,
    refreshFragment: refreshFragment,
    loadFragment: loadFragment,
    setField: setField,
    setState: setState,
    formatRemaining: formatRemaining,
  };
  if ("WebSocket" in window) connect(); else setStatus("offline", "no live updates");
})();
