// Talking to Enclave. The credential (an API key or an OIDC access token) lives in this module's
// memory only: never in localStorage, sessionStorage or a cookie, so a reload signs out and no other
// site can make the browser send it (it travels as an Authorization header, which CSRF cannot forge).
let credential = null;

export function setCredential(value) { credential = value || null; }
export function signedIn() { return credential !== null; }

// The credential stopped working (token expired, key revoked): forget it and let the page ask again.
function expired() {
  credential = null;
  window.dispatchEvent(new CustomEvent("enclave:signed-out"));
}

export class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

export function authHeaders(extra = {}) {
  return credential ? {...extra, Authorization: `Bearer ${credential}`} : {...extra};
}

async function errorOf(res) {
  const body = await res.json().catch(() => ({}));
  const error = body.error || {};
  return new ApiError(res.status, error.message || res.statusText || `HTTP ${res.status}`, error.code);
}

// fetch with the credential; the response as it is (for streams), an ApiError when it is not 2xx.
export async function request(path, options = {}) {
  const res = await fetch(path, {...options, headers: authHeaders(options.headers), credentials: "omit"});
  if (res.status === 401 && credential) expired();
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function api(path, options = {}) {
  const res = await request(path, options);
  return res.status === 204 ? {} : res.json();
}

export function jsonBody(method, body) {
  return {method, headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
}

// An upload with progress events (fetch cannot report upload progress; XMLHttpRequest can).
export function uploadWithProgress(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON: keep the status text */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body.error ? body.error.message : xhr.statusText, body.error?.code));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the upload could not reach Enclave")));
    xhr.send(form);
  });
}
