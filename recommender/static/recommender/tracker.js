/*
 * django-recommender event tracker. No dependencies; include it once per page:
 *
 *   <script src="{% static 'recommender/tracker.js' %}" data-endpoint="{% url 'recommender:events' %}" defer></script>
 *
 * What it sends to POST <data-endpoint> (default /api/recommender/events/):
 * - impression: an element with data-recommender-item that stayed >= 50% visible
 *   for 1 s (once per element and page);
 * - click: a click inside such an element;
 * - view + read: on a page whose article element has data-recommender-read-item,
 *   a view on load and, when the page is hidden or left, the portion scrolled through (0-1).
 * data-recommender-recomm-id and data-recommender-placement on the element travel
 * with its events; the list position is known server-side from the recomm_id's log.
 *
 * Events get a random event_id and wait in a localStorage queue until the server
 * confirmed them, so a failed send is retried (backoff up to a minute) on this or a
 * later page; the server stores an event_id once, so a resend is harmless. A 429
 * (throttled) waits for its Retry-After and costs no attempt: throttling delays
 * events, it never drops them. The queue keeps the newest 1,000.
 * CSRF: signed-in users need the csrftoken cookie (or data-csrf-token on the script
 * tag) as X-CSRFToken. navigator.sendBeacon can't set headers, so when leaving the
 * page the tracker uses fetch(keepalive) when it has a token, else sendBeacon.
 * The visitor id is an HttpOnly cookie the server reads itself.
 *
 * window.recommenderTracker.track(itemId, eventType, {value, placement, recomm_id})
 * records host-defined events (like, share, ...); .flush() sends now.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var data = (script && script.dataset) || {};
  var ENDPOINT = data.endpoint || "/api/recommender/events/";
  var CSRF_COOKIE = data.csrfCookie || "csrftoken";
  var QUEUE_KEY = "recommender:events";
  var SESSION_KEY = "recommender:session";
  var BATCH_SIZE = 100; // well under the server's MAX_EVENTS_PER_BATCH
  var MAX_QUEUE = 1000; // oldest events are dropped beyond this
  var MAX_ATTEMPTS = 8;
  var SEND_DELAY_MS = 2000;
  var IMPRESSION_MS = 1000;

  var memoryQueue = []; // used when localStorage is unavailable (private mode, disabled)
  var sending = false;
  var failures = 0;
  var timer = null;

  function uuid() {
    if (window.crypto && crypto.randomUUID) {
      return crypto.randomUUID().replace(/-/g, "");
    }
    var bytes = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) {
      crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function sessionId() {
    try {
      var id = sessionStorage.getItem(SESSION_KEY);
      if (!id) {
        id = uuid();
        sessionStorage.setItem(SESSION_KEY, id);
      }
      return id;
    } catch (e) {
      return "";
    }
  }

  // The queue is re-read before every change, so tabs of the same site share it safely.
  function readQueue() {
    try {
      var stored = JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
      return Array.isArray(stored) ? stored : [];
    } catch (e) {
      return memoryQueue;
    }
  }

  function writeQueue(queue) {
    queue = queue.slice(-MAX_QUEUE);
    memoryQueue = queue;
    try {
      localStorage.setItem(QUEUE_KEY, JSON.stringify(queue));
    } catch (e) { /* storage full or disabled: the memory queue still holds them */ }
  }

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name.replace(/[.$?*|{}()[\]\\/+^]/g, "\\$&") + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function csrfToken() {
    return cookie(CSRF_COOKIE) || data.csrfToken || "";
  }

  function record(itemId, eventType, extra) {
    var item = parseInt(itemId, 10);
    if (!item) return;
    extra = extra || {};
    var event = {
      event_id: uuid(),
      item: item,
      event_type: eventType,
      timestamp: new Date().toISOString(),
      session_id: sessionId(),
      placement: extra.placement || "",
      recomm_id: extra.recomm_id || ""
    };
    if (extra.value !== undefined && extra.value !== null) event.value = extra.value;
    var queue = readQueue();
    queue.push({ event: event, attempts: 0 });
    writeQueue(queue);
    schedule(queue.length >= BATCH_SIZE ? 0 : SEND_DELAY_MS);
  }

  function schedule(delay) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(function () { timer = null; send(false); }, delay);
  }

  function forget(ids) {
    writeQueue(readQueue().filter(function (entry) { return !ids[entry.event.event_id]; }));
  }

  function countFailure(ids) {
    writeQueue(readQueue().map(function (entry) {
      if (ids[entry.event.event_id]) entry.attempts += 1;
      return entry;
    }).filter(function (entry) { return entry.attempts < MAX_ATTEMPTS; }));
    failures += 1;
    var backoff = Math.min(60000, 1000 * Math.pow(2, failures));
    schedule(backoff + Math.random() * 1000);
  }

  // leaving: the page is being hidden or unloaded, so the request must outlive it.
  function send(leaving) {
    var batch = readQueue().slice(0, BATCH_SIZE);
    if (!batch.length || (sending && !leaving)) return;
    var ids = {};
    var events = batch.map(function (entry) { ids[entry.event.event_id] = true; return entry.event; });
    var body = JSON.stringify({ events: events });
    var token = csrfToken();
    if (leaving && !token && navigator.sendBeacon) {
      // Fire and forget: the events stay queued and are resent (deduplicated) on the next page.
      navigator.sendBeacon(ENDPOINT, body);
      return;
    }
    var headers = { "Content-Type": "application/json" };
    if (token) headers["X-CSRFToken"] = token;
    sending = true;
    fetch(ENDPOINT, { method: "POST", body: body, headers: headers, credentials: "same-origin", keepalive: leaving })
      .then(function (response) {
        sending = false;
        // 2xx: stored. 400: what was valid is stored, the rest can never pass. Both: done.
        if (response.ok || response.status === 400) {
          if (response.status === 400 && window.console) {
            response.json().then(function (body) { console.warn("recommender: events rejected", body); }, function () {});
          }
          failures = 0;
          forget(ids);
          if (readQueue().length) schedule(0);
        } else if (response.status === 429) {
          // Throttled: the events wait (no attempt spent) until the server's Retry-After says so.
          var wait = parseFloat(response.headers.get("Retry-After"));
          schedule(1000 * (isFinite(wait) && wait > 0 ? Math.min(wait, 3600) : 30) + Math.random() * 1000);
        } else if (response.status === 403 || response.status >= 500) {
          countFailure(ids); // CSRF token rotated at login, server trouble: try again later
        } else {
          forget(ids); // 404, 405, 413...: retrying the same request can't help
        }
      }, function () {
        sending = false;
        countFailure(ids);
      });
  }

  function elementContext(el) {
    return { placement: el.getAttribute("data-recommender-placement") || "",
             recomm_id: el.getAttribute("data-recommender-recomm-id") || "" };
  }

  // -- impressions ---------------------------------------------------------
  var seen = typeof WeakSet === "function" ? new WeakSet() : null;
  var pending = typeof Map === "function" ? new Map() : null;
  var observer = null;
  if (window.IntersectionObserver && seen && pending) {
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        var el = entry.target;
        if (entry.isIntersecting && entry.intersectionRatio >= 0.5) {
          if (!pending.has(el)) {
            pending.set(el, setTimeout(function () {
              pending.delete(el);
              seen.add(el);
              observer.unobserve(el);
              record(el.getAttribute("data-recommender-item"), "impression", elementContext(el));
            }, IMPRESSION_MS));
          }
        } else if (pending.has(el)) {
          clearTimeout(pending.get(el));
          pending.delete(el);
        }
      });
    }, { threshold: [0, 0.5, 1] });
  }

  function observe(root) {
    if (!observer || !root.querySelectorAll) return;
    var items = root.querySelectorAll("[data-recommender-item]");
    if (root.hasAttribute && root.hasAttribute("data-recommender-item")) items = [root].concat([].slice.call(items));
    Array.prototype.forEach.call(items, function (el) { if (!seen.has(el)) observer.observe(el); });
  }

  // -- clicks ----------------------------------------------------------------
  document.addEventListener("click", function (event) {
    var el = event.target && event.target.closest && event.target.closest("[data-recommender-item]");
    if (!el) return;
    record(el.getAttribute("data-recommender-item"), "click", elementContext(el));
    send(true); // a click usually navigates away
  }, true);

  // -- view and read portion -------------------------------------------------
  var article = document.querySelector("[data-recommender-read-item]");
  var readPortion = 0;
  var readSent = false;

  function measureRead() {
    if (!article) return;
    var rect = article.getBoundingClientRect();
    if (rect.height <= 0) return;
    var portion = (window.innerHeight - rect.top) / rect.height;
    readPortion = Math.max(readPortion, Math.min(1, Math.max(0, portion)));
  }

  function sendRead() {
    if (!article || readSent) return;
    measureRead();
    readSent = true;
    record(article.getAttribute("data-recommender-read-item"), "read",
           Object.assign(elementContext(article), { value: Math.round(readPortion * 100) / 100 }));
  }

  var left = false; // visibilitychange and pagehide both fire when leaving: send once

  function leave() {
    if (left) return;
    left = true;
    sendRead();
    send(true);
  }

  function start() {
    observe(document);
    if (window.MutationObserver && observer) {
      new MutationObserver(function (mutations) {
        mutations.forEach(function (m) {
          Array.prototype.forEach.call(m.addedNodes, function (node) { if (node.nodeType === 1) observe(node); });
        });
      }).observe(document.body, { childList: true, subtree: true });
    }
    if (article) {
      record(article.getAttribute("data-recommender-read-item"), "view", elementContext(article));
      measureRead();
      var ticking = false;
      window.addEventListener("scroll", function () {
        if (ticking) return;
        ticking = true;
        requestAnimationFrame(function () { ticking = false; measureRead(); });
      }, { passive: true });
    }
    if (readQueue().length) schedule(0); // leftovers from an earlier page
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") leave();
    else left = false;
  });
  window.addEventListener("pagehide", leave);
  window.addEventListener("online", function () { failures = 0; schedule(0); });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }

  window.recommenderTracker = {
    track: function (itemId, eventType, extra) { record(itemId, eventType, extra); },
    flush: function () { send(false); }
  };
})();
