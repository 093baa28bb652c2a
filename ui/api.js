// The daemon's HTTP API with the access token kept in localStorage (see daemon/API.md).

const TOKEN_KEY = 'gptspam.token';

export class Unauthorized extends Error {}

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

/** JSON request; throws Unauthorized on 401 and Error with the daemon's message otherwise. */
export async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token()}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) throw new Unauthorized('The access token was not accepted.');
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `${method} ${path}: ${res.status}`);
  return data;
}

/** An authorised image (SVG chart) as a blob: URL for an <img>; images cannot carry the header themselves. */
export async function imageUrl(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
  if (res.status === 401) throw new Unauthorized('The access token was not accepted.');
  if (!res.ok) return null;
  return URL.createObjectURL(await res.blob());
}
