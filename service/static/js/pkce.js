// OAuth 2.0 authorisation code + PKCE (RFC 7636), S256 only, for a public client in the browser.
export function base64url(bytes) {
  let binary = "";
  for (const b of new Uint8Array(bytes)) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function randomString(byteCount = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));  // 43 characters for 32 bytes
}

export async function challengeOf(verifier) {
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

export function authorizeUrl(config, {state, challenge, nonce, redirectUri}) {
  const url = new URL(config.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code", client_id: config.client_id, redirect_uri: redirectUri, scope: config.scope,
    state, nonce, code_challenge: challenge, code_challenge_method: "S256",
  }).toString();
  return url.toString();
}

export function tokenRequestBody(config, {code, verifier, redirectUri}) {
  return new URLSearchParams({
    grant_type: "authorization_code", code, redirect_uri: redirectUri, client_id: config.client_id, code_verifier: verifier,
  });
}
