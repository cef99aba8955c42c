// bambu-lan dashboard: applies the server's live card changes (server-sent events), filters
// and sorts the farm's cards, and sends controls. No library, no build step. Printer text is
// only ever set with textContent, never parsed as HTML.
"use strict";
(function () {
  var root = document.getElementById("cards");
  if (!root) return;
  var serialFilter = root.dataset.serialFilter || "";
  var cards = new Map();
  root.querySelectorAll(".card[data-serial]").forEach(function (el) {
    cards.set(el.dataset.serial, el);
  });
  // A picture that cannot be had hides its frame instead of showing a broken image.
  root.querySelectorAll(".snap img").forEach(function (img) {
    img.addEventListener("error", function () { img.parentNode.hidden = true; });
  });
  // The printer page's live view: a camera that gives nothing answers with an error, and the
  // server's note (it comes with the live stream) says why; until then, a word of our own.
  var live = root.querySelector("img[data-live]");
  var liveNote = root.querySelector('.camera [data-f="camera_note"]');
  if (live) {
    live.addEventListener("error", function () {
      live.hidden = true;
      live.removeAttribute("src");
      if (liveNote && !liveNote.textContent) liveNote.textContent = "The live view could not start.";
    });
  }
  function showLive(on) {
    if (!live) return;
    if (on && live.hidden) {
      live.hidden = false;
      if (liveNote) liveNote.textContent = "";
      live.src = live.dataset.live + "?t=" + Date.now();
    } else if (!on && !live.hidden) {
      live.hidden = true;
      live.removeAttribute("src"); // ends the stream: no frozen last picture
    }
  }
  var RANK = ["error", "paused", "printing", "finished", "idle", "connecting", "offline"];
  var groups = root.dataset.groups ? JSON.parse(root.dataset.groups) : {};

  function clock(ts) {
    if (!ts) return "–";
    return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  var lists = {
    temps: function (box, items) {
      items.forEach(function (t) {
        var s = el("span", "temp");
        s.appendChild(el("small", "", t[0]));
        s.appendChild(document.createTextNode(" " + t[1]));
        box.appendChild(s);
      });
    },
    trays: function (box, items) {
      items.forEach(function (t) {
        var s = el("span", "tray" + (t.a ? " active" : "") + (t.e ? " empty" : ""));
        var title = t.label + ": " + (t.t || "empty");
        if (t.r !== null && t.r >= 0) title += " " + t.r + " %";
        s.title = title + (t.a ? " (in use)" : "");
        var i = el("i");
        if (/^#[0-9A-F]{6}$/i.test(t.c)) i.style.background = t.c;
        s.appendChild(i);
        s.appendChild(el("b", "", t.t));
        box.appendChild(s);
      });
    },
    hms: function (box, items) {
      items.forEach(function (a) {
        var li = el("li", "sev-" + String(a.sev).replace(/[^a-z]/g, ""));
        li.appendChild(el("code", "", a.code));
        li.appendChild(document.createTextNode(" " + a.text));
        box.appendChild(li);
      });
    },
  };

  function apply(card, patch) {
    Object.keys(patch).forEach(function (key) {
      var value = patch[key];
      if (key === "cls") {
        card.className = "card cls-" + value;
        card.dataset.cls = value;
      } else if (key === "progress") {
        card.dataset.progress = value;
        card.querySelectorAll('[data-f="progress"]').forEach(function (p) { p.value = value; });
        card.querySelectorAll('[data-f="progress-text"]').forEach(function (p) { p.textContent = value + " %"; });
      } else if (key === "finish") {
        card.dataset.finish = value || "";
        card.querySelectorAll('[data-f="finish"]').forEach(function (f) {
          f.dataset.ts = value || "";
          f.textContent = clock(value);
        });
      } else if (lists[key]) {
        card.querySelectorAll('[data-list="' + key + '"]').forEach(function (box) {
          box.textContent = "";
          lists[key](box, value);
        });
      } else if (key === "camera_note" && serialFilter) {
        if (liveNote && (value || !live || !live.hidden)) liveNote.textContent = value || "";
      } else if (key === "camera" && serialFilter) {
        showLive(value);
      } else if (key === "snap" || key === "camera") {
        var box = card.querySelector("[data-show=camera]");
        if (!box) return;
        if (key === "camera") box.hidden = !value;
        if (key === "snap") card.dataset.snap = value || 0;
        var img = box.querySelector("img");
        if (!box.hidden && img) img.src = img.dataset.srcBase + "?v=" + (card.dataset.snap || 0);
      } else {
        if (key === "name") card.dataset.name = value;
        card.querySelectorAll('[data-f="' + key + '"]').forEach(function (f) {
          var text = value === null || value === "" ? (f.tagName === "DD" ? "–" : "") : String(value);
          f.textContent = text;
        });
      }
    });
  }

  // -- filter and sort (farm page): CSS order and hidden, no DOM moves --
  var tools = document.getElementById("tools");
  function arrange() {
    if (!tools) return;
    var q = tools.elements.q.value.trim().toLowerCase();
    var show = tools.elements.show.value;
    var sort = tools.elements.sort.value;
    var members = groups[show] || null;
    var list = Array.from(cards.values());
    list.forEach(function (c) {
      var visible = (!q || c.dataset.name.toLowerCase().indexOf(q) >= 0) &&
        (!members || members.indexOf(c.dataset.cls) >= 0);
      c.hidden = !visible;
    });
    var key = {
      name: function (c) { return [0, c.dataset.name.toLowerCase()]; },
      state: function (c) { return [RANK.indexOf(c.dataset.cls), c.dataset.name.toLowerCase()]; },
      progress: function (c) { return [-Number(c.dataset.progress), c.dataset.name.toLowerCase()]; },
      finish: function (c) {
        var f = Number(c.dataset.finish);
        return [f ? f : Infinity, c.dataset.name.toLowerCase()];
      },
    }[sort] || function (c) { return [0, c.dataset.name.toLowerCase()]; };
    list.sort(function (a, b) {
      var ka = key(a), kb = key(b);
      return ka[0] < kb[0] ? -1 : ka[0] > kb[0] ? 1 : ka[1] < kb[1] ? -1 : ka[1] > kb[1] ? 1 : 0;
    });
    list.forEach(function (c, i) { c.style.order = i; });
    document.querySelectorAll("[data-show-group]").forEach(function (a) {
      a.classList.toggle("on", a.dataset.showGroup === show);
    });
    var params = new URLSearchParams();
    if (q) params.set("q", q);
    if (show !== "all") params.set("show", show);
    if (sort !== "name") params.set("sort", sort);
    var search = params.toString();
    history.replaceState(null, "", search ? "?" + search : location.pathname);
  }
  if (tools) {
    tools.addEventListener("input", arrange);
    tools.addEventListener("submit", function (e) { e.preventDefault(); arrange(); });
    document.querySelectorAll("[data-show-group]").forEach(function (a) {
      a.addEventListener("click", function (e) {
        e.preventDefault();
        var s = tools.elements.show;
        s.value = s.value === a.dataset.showGroup ? "all" : a.dataset.showGroup;
        arrange();
      });
    });
    arrange();
  }
  document.querySelectorAll('[data-f="finish"]').forEach(function (f) {
    if (f.dataset.ts) f.textContent = clock(Number(f.dataset.ts));
  });

  // -- the live stream --
  var status = document.getElementById("live-status");
  var tickEl = document.getElementById("summary") || root;
  var url = "/events?since=" + encodeURIComponent(tickEl.dataset.tick || "");
  if (serialFilter) url += "&serial=" + encodeURIComponent(serialFilter);
  var source = new EventSource(url);
  source.onopen = function () {
    status.textContent = "live";
    status.dataset.live = "open";
  };
  source.onerror = function () {
    status.textContent = "reconnecting…";
    status.dataset.live = "error";
  };
  source.onmessage = function (event) {
    var msg = JSON.parse(event.data);
    var resort = false;
    Object.keys(msg.cards).forEach(function (serial) {
      var card = cards.get(serial);
      var patch = msg.cards[serial];
      if (!card || patch.removed) {
        if (!serialFilter) location.reload(); // a printer came or went: render the page anew
        return;
      }
      apply(card, patch);
      resort = resort || "cls" in patch || "progress" in patch || "finish" in patch || "name" in patch;
    });
    if (msg.summary) {
      Object.keys(msg.summary).forEach(function (k) {
        var b = document.querySelector('[data-sum="' + k + '"]');
        if (b) b.textContent = msg.summary[k];
      });
    }
    if (resort) arrange();
    root.dataset.tick = msg.t;
  };

  // -- controls: the printer's answer shown in place --
  var answer = document.getElementById("answer");
  document.querySelectorAll("form[data-control]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var data = new FormData(form);
      if (e.submitter && e.submitter.name) data.set(e.submitter.name, e.submitter.value);
      if (form.dataset.confirm) {
        if (!window.confirm(form.dataset.confirm)) return;
        data.set("confirm", "yes");
      }
      answer.hidden = false;
      answer.className = "answer";
      answer.textContent = data.get("action") + ": sent, waiting for the printer…";
      fetch(form.getAttribute("action"), {  // form.action is the input named "action"
        method: "POST",
        body: new URLSearchParams(data),
        headers: { Accept: "application/json", "X-CSRF-Token": data.get("csrf") },
        credentials: "same-origin",
      }).then(function (r) {
        return r.headers.get("Content-Type").indexOf("json") >= 0
          ? r.json()
          : r.text().then(function (t) { return { ok: false, action: data.get("action"), answer: t }; });
      }).then(function (res) {
        answer.className = "answer " + (res.ok ? "ok" : "refused");
        answer.textContent = res.action + ": " + res.answer;
      }).catch(function (err) {
        answer.className = "answer refused";
        answer.textContent = "could not reach the dashboard: " + err;
      });
    });
  });
})();
