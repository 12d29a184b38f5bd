(function () {
  "use strict";
  var form = document.getElementById("sign-in");
  var email = document.getElementById("email");
  var password = document.getElementById("password");
  var submit = document.getElementById("submit");
  var status = document.getElementById("status");
  // Only a page of this site is a place to go on to.
  var next = new URLSearchParams(window.location.search).get("next") || "";
  if (!/^\/account\/[A-Za-z0-9\-\/]*$/.test(next)) { next = "overview"; }

  function say(text, kind) { status.textContent = text; status.className = kind || ""; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!email.value || !password.value) { say("Enter your email and password.", "error"); return; }
    submit.disabled = true;
    say("Signing in…");
    fetch("login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: email.value, password: password.value })
    }).then(function (response) {
      if (response.ok) { window.location.assign(next); return; }
      submit.disabled = false;
      if (response.status === 429) { say("Too many attempts; wait a few minutes and try again.", "error"); return; }
      say("That email and password do not match an account.", "error");
      password.value = "";
      password.focus();
    }).catch(function () {
      submit.disabled = false;
      say("Could not sign in; check your connection.", "error");
    });
  });
})();
