(function () {
  "use strict";
  var main = document.getElementById("setup");
  var appUrl = main.getAttribute("data-app-url");
  var params = new URLSearchParams(window.location.hash.slice(1));
  var token = params.get("token") || "";
  var email = params.get("email") || "";
  // The token is a secret: drop it from the address bar and the history entry.
  if (window.location.hash) {
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  var form = document.getElementById("setup-form");
  var password = document.getElementById("password");
  var confirm = document.getElementById("confirm");
  var submit = document.getElementById("submit");
  var status = document.getElementById("status");
  var problem = document.getElementById("link-problem");
  var problemText = document.getElementById("link-problem-text");
  var resend = document.getElementById("resend");

  document.getElementById("username").value = email;
  if (email) { document.getElementById("email-label").textContent = email; }

  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }
  function linkProblem(text) {
    form.hidden = true;
    problemText.textContent = text;
    problem.hidden = false;
    say("");
    resend.disabled = !email;
    resend.focus();
  }
  function problemType(body) {
    var type = body && typeof body.type === "string" ? body.type : "";
    return type.slice(type.lastIndexOf("/") + 1);
  }

  if (!token || !email) {
    linkProblem("This link is incomplete. Open the link from your email again, or ask for a new one.");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (Array.from(password.value).length < 10) {
      say("Use at least 10 characters.", "error");
      password.focus();
      return;
    }
    if (password.value !== confirm.value) {
      say("The passwords do not match.", "error");
      confirm.focus();
      return;
    }
    submit.disabled = true;
    say("Setting your password…");
    fetch("setup-password", {
      method: "POST",
      headers: { "content-type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ email: email, token: token, password: password.value })
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.ok) {
          if (!body.session || !body.session.access_token) {
            say("Your password is set, but signing you in failed. Sign in with your new password.", "ok");
            return;
          }
          say("Password set. Signing you in…", "ok");
          // The cookie signs the member in on this origin; an app on another
          // origin takes the session from the fragment (never sent to a server).
          var session = "access_token=" + encodeURIComponent(body.session.access_token) +
            "&token_type=Bearer&expires_in=" + encodeURIComponent(body.session.expires_in);
          window.location.assign(appUrl + (appUrl.indexOf("#") === -1 ? "#" : "&") + session);
          return;
        }
        submit.disabled = false;
        var kind = problemType(body);
        if (kind === "invalid-setup-link") {
          linkProblem("This link has expired, was already used, or is not valid.");
        } else if (kind === "invalid-password") {
          say(body.detail || "That password is not accepted.", "error");
          password.focus();
        } else {
          say("Something went wrong (" + response.status + "). Please try again.", "error");
        }
      });
    }).catch(function () {
      submit.disabled = false;
      say("The network is unavailable. Please try again.", "error");
    });
  });

  resend.addEventListener("click", function () {
    resend.disabled = true;
    fetch("resend-setup-email", {
      method: "POST",
      headers: { "content-type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ email: email })
    }).then(function (response) {
      if (response.ok) {
        say("Check your inbox: if " + email + " has an account waiting for setup, a new link is on its way. It replaces this one.", "ok");
      } else {
        resend.disabled = false;
        say("Could not send a new link (" + response.status + "). Please try again.", "error");
      }
    }).catch(function () {
      resend.disabled = false;
      say("The network is unavailable. Please try again.", "error");
    });
  });
}());
