// Sign-in: an API key typed in (dev mode and service accounts), or OIDC code + PKCE when configured.
// Between the redirect to the provider and the way back, only the PKCE verifier and the state (one-use
// values, not credentials) wait in sessionStorage; the access token itself is kept in memory.
import {setCredential} from "./api.js";
import {authorizeUrl, challengeOf, randomString, tokenRequestBody} from "./pkce.js";

const PENDING = "enclave-oidc-pending";

export function redirectUri() { return `${location.origin}/`; }

export async function loadConfig() {
  const res = await fetch("/web/config", {credentials: "omit"});
  return res.ok ? res.json() : {mode: "dev", oidc: null};
}

export async function startOidc(config) {
  const verifier = randomString(32), state = randomString(16), nonce = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({verifier, state}));
  const challenge = await challengeOf(verifier);
  location.assign(authorizeUrl(config, {state, challenge, nonce, redirectUri: redirectUri()}));
}

// Back from the provider with ?code=…&state=…: exchange the code; true when signed in.
export async function finishOidc(config) {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", location.pathname);  // the code is single-use: keep it out of history
  if (params.has("error")) throw new Error(`the identity provider refused: ${params.get("error_description") || params.get("error")}`);
  if (!pending || pending.state !== params.get("state")) throw new Error("sign-in state mismatch: start the sign-in again");
  const res = await fetch(config.token_endpoint, {method: "POST", credentials: "omit",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: tokenRequestBody(config, {code: params.get("code"), verifier: pending.verifier, redirectUri: redirectUri()})});
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access_token) throw new Error(`the token exchange failed: ${body.error_description || body.error || res.status}`);
  setCredential(body.access_token);
  return true;
}
