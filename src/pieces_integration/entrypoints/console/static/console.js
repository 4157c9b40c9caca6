// The console's only script besides htmx: the live feed over /ws (a ticket first, since a
// browser cannot set headers on a WebSocket). No inline script anywhere (strict CSP).
(function () {
  "use strict";
  var MAX_ITEMS = 200;

  function describe(message) {
    var p = message.payload || {};
    if (p.asset && p.asset.name) return p.asset.name;
    if (p.asset_id) return p.asset_id;
    if (p.state) return String(p.state);
    if (typeof p.changes_count === "number") return p.changes_count + " changes";
    return "";
  }

  function startFeed(list) {
    var state = document.getElementById("feed-state");
    var attempt = 0;

    function say(text) { if (state) state.textContent = text; }

    function add(message) {
      var item = document.createElement("li");
      var time = document.createElement("time");
      var when = message.timestamp ? new Date(message.timestamp) : new Date();
      time.dateTime = when.toISOString();
      time.textContent = when.toLocaleTimeString();
      var kind = document.createElement("strong");
      kind.textContent = message.type.replace(/_/g, " ");
      kind.className = "event-type";
      item.dataset.type = message.type;
      item.appendChild(time);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(kind);
      var what = describe(message);
      if (what) item.appendChild(document.createTextNode(" " + what));
      list.insertBefore(item, list.firstChild);
      while (list.children.length > MAX_ITEMS) list.removeChild(list.lastChild);
    }

    function connect() {
      fetch(list.dataset.ticketUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": list.dataset.csrf },
      }).then(function (response) {
        if (!response.ok) throw new Error("ticket " + response.status);
        return response.json();
      }).then(function (body) {
        var scheme = location.protocol === "https:" ? "wss:" : "ws:";
        var socket = new WebSocket(scheme + "//" + location.host + "/ws?ticket=" + encodeURIComponent(body.ticket));
        var ping = null;
        socket.onopen = function () {
          attempt = 0;
          socket.send(JSON.stringify({ type: "subscribe", payload: {} }));
          ping = setInterval(function () { socket.send(JSON.stringify({ type: "ping", payload: {} })); }, 20000);
        };
        socket.onmessage = function (frame) {
          var message;
          try { message = JSON.parse(frame.data); } catch (e) { return; }
          if (message.type === "subscribed") { say("Live."); list.dataset.live = "1"; return; }
          if (["heartbeat", "pong", "reconnect", "reset", "error", "unsubscribed"].indexOf(message.type) >= 0) return;
          add(message);
        };
        socket.onclose = function () {
          if (ping) clearInterval(ping);
          delete list.dataset.live;
          retry();
        };
      }).catch(function () { retry(); });
    }

    function retry() {
      attempt += 1;
      var delay = Math.min(30000, 500 * Math.pow(2, attempt));
      say("Reconnecting in " + Math.round(delay / 1000) + " s…");
      setTimeout(connect, delay);
    }

    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("feed");
    if (list) startFeed(list);
  });
})();
