// Passkeys: registration on Settings → Security, the passkey of the second-factor form and
// the passwordless sign-in of the login page.
// The server's options (webauthn-rs's JSON, binary fields in base64url) become the buffers the
// WebAuthn API takes; the browser's answer goes back as JSON in a form field, posted with the
// form's CSRF token. Served from our own origin: the pages keep a CSP without inline script.
"use strict";
(function () {
  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }
  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
  }
  function showError(message) {
    var box = document.getElementById("passkey-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }
  function answer(credential, fields) {
    var out = {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: {},
      extensions: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
    fields.forEach(function (name) {
      var value = credential.response[name];
      if (value) out.response[name] = toB64url(value);
    });
    return JSON.stringify(out);
  }

  // A ceremony's id and options, asked for with the form's CSRF token.
  function ceremony(form) {
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    return fetch(form.getAttribute("data-options"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString(),
    }).then(function (resp) {
      if (!resp.ok) throw new Error("The server refused to start (" + resp.status + "). Reload the page and try again.");
      return resp.json();
    });
  }
  var assertionFields = ["authenticatorData", "clientDataJSON", "signature", "userHandle"];

  // Settings → Security: ask for options, create the credential, post it.
  var add = document.getElementById("add-passkey");
  if (add) {
    add.addEventListener("click", function () {
      var form = document.getElementById("passkey-form");
      ceremony(form)
        .then(function (reply) {
          var pk = reply.options.publicKey;
          pk.challenge = toBytes(pk.challenge);
          pk.user = Object.assign({}, pk.user, { id: toBytes(pk.user.id) });
          pk.excludeCredentials = withIds(pk.excludeCredentials);
          return navigator.credentials.create({ publicKey: pk }).then(function (credential) {
            form.elements.ceremony.value = reply.ceremony;
            form.elements.credential.value = answer(credential, ["attestationObject", "clientDataJSON"]);
            form.submit();
          });
        })
        .catch(function (e) {
          showError(e && e.message ? e.message : "The passkey was not created.");
        });
    });
  }

  // The second-factor form: get an assertion for the embedded options, post the form.
  var use = document.getElementById("use-passkey");
  if (use) {
    use.addEventListener("click", function () {
      var form = use.form;
      var options = JSON.parse(use.getAttribute("data-options"));
      var pk = options.publicKey;
      pk.challenge = toBytes(pk.challenge);
      pk.allowCredentials = withIds(pk.allowCredentials);
      navigator.credentials
        .get({ publicKey: pk })
        .then(function (credential) {
          form.elements.passkey.value = answer(credential, assertionFields);
          form.submit();
        })
        .catch(function (e) {
          showError(e && e.message ? e.message : "The passkey was not used.");
        });
    });
  }

  // The sign-in page: no email, no password; the authenticator offers its passkeys.
  var passwordless = document.getElementById("passkey-signin");
  if (passwordless) {
    passwordless.addEventListener("click", function () {
      var form = passwordless.form;
      ceremony(form)
        .then(function (reply) {
          var pk = reply.options.publicKey;
          pk.challenge = toBytes(pk.challenge);
          pk.allowCredentials = withIds(pk.allowCredentials);
          return navigator.credentials.get({ publicKey: pk }).then(function (credential) {
            form.elements.ceremony.value = reply.ceremony;
            form.elements.passkey.value = answer(credential, assertionFields);
            form.submit();
          });
        })
        .catch(function (e) {
          showError(e && e.message ? e.message : "No passkey was used.");
        });
    });
  }
})();
