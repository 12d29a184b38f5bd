(function () {
  "use strict";
  var list = document.getElementById("plans");
  var who = document.getElementById("who");
  var emailRow = document.getElementById("email-row");
  var email = document.getElementById("email");
  var status = document.getElementById("status");
  var signedIn = false;

  function say(text, kind) { status.textContent = text; status.className = kind || ""; }
  function period(plan) {
    if (plan.lifetime) { return "Lifetime access"; }
    if (plan.kind === "subscription") { return "Renews every " + plan.period_days + " days"; }
    return plan.period_days + " days of access";
  }
  function choose(plan, provider, button) {
    var body = { plan: plan.id, provider: provider };
    if (!signedIn) {
      if (!email.value) { say("Enter your email first.", "error"); email.focus(); return; }
      body.email = email.value;
    }
    button.disabled = true;
    say("Opening the checkout…");
    fetch("checkout", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.status === 201 && answer.url) { window.location.assign(answer.url); return; }
        button.disabled = false;
        say(answer.detail || "The checkout could not be opened; try again.", "error");
      });
    }).catch(function () {
      button.disabled = false;
      say("The checkout could not be opened; check your connection.", "error");
    });
  }
  function render(body) {
    if (!body.payments_enabled) { say("Payments are disabled right now.", "error"); }
    (body.plans || []).forEach(function (plan) {
      var box = document.createElement("section");
      box.className = "plan";
      var title = document.createElement("h2");
      title.textContent = plan.name;
      var what = document.createElement("p");
      what.className = "muted";
      what.textContent = period(plan);
      box.appendChild(title);
      box.appendChild(what);
      Object.keys(plan.prices || {}).forEach(function (provider) {
        var price = plan.prices[provider];
        var button = document.createElement("button");
        button.type = "button";
        var label = provider === "stripe" ? "card (Stripe)" : "Paystack";
        button.textContent = "Choose plan: " + (price.display ? price.display + " by " : "pay by ") + label;
        button.setAttribute("data-plan", plan.id);
        button.setAttribute("data-provider", provider);
        button.disabled = !body.payments_enabled;
        button.addEventListener("click", function () { choose(plan, provider, button); });
        box.appendChild(button);
      });
      list.appendChild(box);
    });
  }

  fetch("me", { credentials: "same-origin" }).then(function (response) {
    if (response.ok) {
      return response.json().then(function (me) {
        signedIn = true;
        who.textContent = "Signed in as " + me.profile.email + ".";
      });
    }
    who.textContent = "You are not signed in.";
    emailRow.hidden = false;
  }).catch(function () { emailRow.hidden = false; }).then(function () {
    return fetch("../plans").then(function (response) { return response.json(); }).then(render);
  }).catch(function () { say("The plans could not be loaded; reload the page.", "error"); });
})();
