// The page: sign in, then show the views the access policy allows this caller (from /v1/me).
import {api, setCredential, signedIn} from "./api.js";
import {initAsk} from "./ask.js";
import {initAudit, openAudit} from "./audit.js";
import {initDocuments, refresh} from "./documents.js";
import {finishOidc, loadConfig, startOidc} from "./signin.js";

const $ = (id) => document.getElementById(id);
let allowed = {};

const firstAllowed = () => ["ask", "documents", "audit"].find((view) => allowed[view]);

function showView(name) {
  if (!allowed[name]) name = firstAllowed();
  for (const tab of document.querySelectorAll(".tab")) {
    const current = tab.dataset.view === name;
    if (current) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
  }
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  if (name === "documents") refresh();
  if (name === "audit") openAudit();
}

async function enter() {
  const me = await api("/v1/me");
  // A contributor without the reader role uploads there and follows its own uploads, but lists nothing.
  allowed = {ask: me.views.ask, documents: me.views.documents || me.views.upload, audit: me.views.audit};
  $("who").textContent = `${me.subject} · ${me.tenant} · ${me.roles.join(", ") || "no roles"}`;
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = !allowed[tab.dataset.view];
  $("views").hidden = false;
  $("sign-out").hidden = false;
  $("signin").hidden = true;
  initDocuments(me.views);
  if (!firstAllowed()) $("who").textContent += " · this account may not use any view; ask an administrator for a role";
  showView(location.hash.slice(1));
  $("main").focus();
}

async function signInWithKey(event) {
  event.preventDefault();
  setCredential($("api-key").value.trim());
  $("api-key").value = "";
  try {
    await enter();
  } catch (e) {
    setCredential(null);
    $("signin-error").textContent = `Sign-in failed: ${e.message}`;
  }
}

function signOut() {
  setCredential(null);
  location.hash = "";
  location.reload();
}

async function boot() {
  initAsk();
  initAudit();
  $("key-form").addEventListener("submit", signInWithKey);
  $("sign-out").addEventListener("click", signOut);
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => { history.replaceState(null, "", `#${tab.dataset.view}`); showView(tab.dataset.view); });
  }
  window.addEventListener("enclave:signed-out", () => {
    for (const hidden of [$("views"), $("sign-out"), ...document.querySelectorAll(".view")]) hidden.hidden = true;
    $("who").textContent = "";
    $("signin").hidden = false;
    $("signin-error").textContent = "Your sign-in has expired or was revoked; sign in again.";
  });
  window.addEventListener("hashchange", () => { if (signedIn()) showView(location.hash.slice(1)); });
  const config = await loadConfig();
  if (!config.oidc) return;
  $("oidc-signin").hidden = false;
  $("oidc-button").addEventListener("click", () => startOidc(config.oidc));
  try {
    if (await finishOidc(config.oidc)) await enter();
  } catch (e) {
    setCredential(null);
    $("signin-error").textContent = e.message;
  }
}

boot();
