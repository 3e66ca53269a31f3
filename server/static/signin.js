// Sign-in of the department viewer (/map) with the OpenID provider: authorization code + PKCE (S256), public client.
// The ID token (audience = client id, what the server validates) is kept in sessionStorage only (gone with the
// tab) and sent as `Authorization: Bearer` to this server, never elsewhere.
import { BASE } from './common.js';

const TOKEN = 'sejong.signin.token';
const PENDING = 'sejong.signin.pending';

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random() { return b64url(crypto.getRandomValues(new Uint8Array(32))); }

function claims(jwt) {
  try {
    const bytes = Uint8Array.from(atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

function redirectUri() { return `${BASE}/map`; }

// The signed-in session {token, name, exp}, or null (an expired token is dropped).
export function session() {
  const raw = sessionStorage.getItem(TOKEN);
  if (!raw) return null;
  const s = JSON.parse(raw);
  if (!s.exp || s.exp * 1000 <= Date.now()) { sessionStorage.removeItem(TOKEN); return null; }
  return s;
}

// Headers for a request to this server (none when signed out or for another host).
export function authHeaders(url) {
  const s = session();
  const own = new URL(url, window.location.href).origin === new URL(BASE, window.location.href).origin;
  return s && own ? { Authorization: `Bearer ${s.token}` } : {};
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
  window.location.reload();
}

// Send the browser to the provider's authorize endpoint (discovered from the issuer).
export async function signIn(issuer, clientId, lang) {
  const r = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!r.ok) throw new Error(`OpenID discovery: HTTP ${r.status}`);
  const doc = await r.json();
  const verifier = random();
  const state = random();
  const nonce = random();
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({
    verifier, state, nonce, clientId, tokenEndpoint: doc.token_endpoint, lang, hash: window.location.hash }));
  const u = new URL(doc.authorization_endpoint);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri(),
    scope: 'openid profile', state, nonce, code_challenge: challenge, code_challenge_method: 'S256' })) {
    u.searchParams.set(k, v);
  }
  window.location.assign(u.toString());
}

// Back from the provider (?code=&state=): exchange the code for tokens, then reload /map clean. Returns false when
// this is not a sign-in answer; throws on a failed one.
export async function completeSignIn() {
  const params = new URLSearchParams(window.location.search);
  if (!params.has('code') && !params.has('error')) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  const clean = (lang) => `${BASE}/map?lang=${lang || 'ko'}${pending?.hash || ''}`;
  window.history.replaceState(null, '', clean(pending?.lang));
  if (params.has('error')) throw new Error(`sign-in refused: ${params.get('error_description') || params.get('error')}`);
  if (!pending || params.get('state') !== pending.state) throw new Error('sign-in answer does not match a request');
  const r = await fetch(pending.tokenEndpoint, { method: 'POST', body: new URLSearchParams({
    grant_type: 'authorization_code', code: params.get('code'), redirect_uri: redirectUri(),
    client_id: pending.clientId, code_verifier: pending.verifier }) });
  if (!r.ok) throw new Error(`token exchange: HTTP ${r.status}`);
  const tokens = await r.json();
  const c = tokens.id_token && claims(tokens.id_token);
  if (!c || (c.nonce !== undefined && c.nonce !== pending.nonce)) throw new Error('sign-in: unusable ID token');
  sessionStorage.setItem(TOKEN, JSON.stringify({
    token: tokens.id_token, exp: c.exp, name: c.name || c.preferred_username || c.email || c.sub }));
  window.location.reload();  // the address is already the clean /map (same hash: replace() would not reload)
  return true;
}
