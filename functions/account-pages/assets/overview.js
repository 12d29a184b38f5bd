(function () {
  "use strict";
  var status = document.getElementById("status");
  function say(text, kind) { status.textContent = text; status.className = kind || ""; }
  function day(iso) {
    if (!iso) { return ""; }
    return new Date(iso).toLocaleDateString("en-US", { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
  }
  function item(text, cls) {
    var box = document.createElement("div");
    box.className = "item" + (cls ? " " + cls : "");
    var line = document.createElement("span");
    line.textContent = text;
    box.appendChild(line);
    return box;
  }
  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return { status: response.status, body: answer };
      });
    });
  }
  function subscriptionLine(sub) {
    var name = sub.plan_name || sub.plan;
    var line = name + ": " + sub.state;
    if (sub.access && sub.access_until) { line += ", access until " + day(sub.access_until); }
    else if (sub.access) { line += ", access does not expire"; }
    else { line += ", no access"; }
    return line;
  }
  function renewalButton(sub, change, label) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "quiet";
    button.textContent = label;
    button.addEventListener("click", function () {
      button.disabled = true;
      post("subscriptions/" + encodeURIComponent(sub.id) + "/" + change).then(function (answer) {
        button.disabled = false;
        if (answer.status === 202) { say(answer.body.message, "ok"); load(); return; }
        say(answer.body.detail || "That did not work; try again.", "error");
      });
    });
    return button;
  }
  function render(me) {
    document.getElementById("who").textContent = "Signed in as " + me.profile.email + ".";
    document.getElementById("points").textContent = "Points: " + me.points;
    var subs = document.getElementById("subscriptions");
    subs.textContent = "";
    if (!me.subscriptions.length) { subs.appendChild(item("No subscriptions yet.")); }
    me.subscriptions.forEach(function (sub) {
      var box = item(subscriptionLine(sub));
      box.setAttribute("data-subscription", sub.id);
      var changeable = sub.provider === "stripe" || sub.provider === "paystack";
      if (changeable && sub.renews) { box.appendChild(renewalButton(sub, "cancel", "Cancel")); }
      if (changeable && sub.state === "canceled" && sub.access) { box.appendChild(renewalButton(sub, "resume", "Resume")); }
      subs.appendChild(box);
    });
  }
  function loadPayments() {
    fetch("payments", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (page) {
      var box = document.getElementById("payments");
      box.textContent = "";
      if (!page.items.length) { box.appendChild(item("No payments yet.")); }
      page.items.forEach(function (p) {
        var state = p.upcoming ? "upcoming, starts " + day(p.starts_at) : p.status;
        box.appendChild(item(day(p.created_at) + " · " + (p.plan_name || p.plan || "") + " · " + (p.amount || "") + " · " + state));
      });
    });
  }
  function loadNotices() {
    fetch("notifications", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (page) {
      var box = document.getElementById("notices");
      box.textContent = "";
      if (!page.items.length) { box.appendChild(item("No notices.")); }
      page.items.forEach(function (n) {
        var row = item(n.title + ": " + n.text, n.read ? "" : "unread");
        if (!n.read) {
          var read = document.createElement("button");
          read.type = "button";
          read.className = "quiet";
          read.textContent = "Mark read";
          read.addEventListener("click", function () {
            post("notifications/" + encodeURIComponent(n.id) + "/read").then(loadNotices);
          });
          row.appendChild(read);
        }
        box.appendChild(row);
      });
    });
  }
  function load() {
    fetch("me", { credentials: "same-origin" }).then(function (response) {
      if (response.status === 401) { window.location.assign("sign-in?next=/account/overview"); return; }
      return response.json().then(render).then(function () { loadPayments(); loadNotices(); });
    }).catch(function () { say("Your account could not be loaded; reload the page.", "error"); });
  }
  document.getElementById("billing").addEventListener("click", function () {
    post("billing").then(function (answer) {
      if (answer.status === 200 && answer.body.url) { window.location.assign(answer.body.url); return; }
      say(answer.body.detail || "No card to update.", "error");
    });
  });
  load();
})();
