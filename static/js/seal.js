// The sealed PIN, browser side: WebCrypto only (crypto.subtle), no libraries.
// Mirrors bridge/seal.py (scheme v1, see docs/bridge-protocol.md): ephemeral ECDH P-256
// with the bridge's public key, HKDF-SHA256 (random 16-byte salt, info = LABEL ||
// context), AES-256-GCM (random 12-byte IV, AAD = LABEL || context). The platform only
// ever relays the envelope; only the bridge can open it, and only for this context.
//
// sealSecret: the same scheme for a library's password (1-63 bytes of UTF-8) with its
// own label and a context of {bridgeId, purpose, binding}: "sip2-login" and
// "sip2-terminal" bound to the connection target (sip2Target), "sip2-patron" bound to
// the command id. The secret is padded to 64 bytes (a length byte, the secret, zeros),
// so the ciphertext does not tell its length.

const LABEL = new TextEncoder().encode("ichimai-pin-seal-v1");
const SECRET_LABEL = new TextEncoder().encode("ichimai-secret-seal-v1");
const SECRET_MAX_BYTES = 63;
const SECRET_PURPOSES = ["sip2-login", "sip2-terminal", "sip2-patron"];
const MAX_ID_BYTES = 255;

function b64uEncode(bytes) {
  const u8 = new Uint8Array(bytes);
  let bin = "";
  for (const b of u8) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function b64uDecode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) {
    throw new TypeError("bad base64url");
  }
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function lengthPrefixed(values, what) {
  const parts = [];
  for (const value of values) {
    const raw = new TextEncoder().encode(String(value));
    if (raw.length < 1 || raw.length > MAX_ID_BYTES) {
      throw new RangeError(`${what} must be 1-255 bytes of UTF-8`);
    }
    parts.push(new Uint8Array([raw.length >> 8, raw.length & 0xff]), raw);
  }
  return concat(...parts);
}

/** Length-prefixed UTF-8 of the bridge id and the command id (same bytes as seal.py). */
export function contextBytes({ bridgeId, commandId }) {
  return lengthPrefixed([bridgeId, commandId], "context ids");
}

/** Length-prefixed UTF-8 of bridge id, purpose and binding (SecretContext in seal.py). */
export function secretContextBytes({ bridgeId, purpose, binding }) {
  if (!SECRET_PURPOSES.includes(purpose)) throw new RangeError("unknown purpose");
  return lengthPrefixed([bridgeId, purpose, binding], "context parts");
}

/** The binding of a SIP2 connection's passwords: "tls://host:port" or "tcp://host:port". */
export function sip2Target(host, port, tls) {
  return `${tls ? "tls" : "tcp"}://${String(host).toLowerCase()}:${Number(port)}`;
}

async function seal(bridgePublicKeyB64u, plain, info) {
  const subtle = crypto.subtle;
  const curve = { name: "ECDH", namedCurve: "P-256" };
  const bridgeKey = await subtle.importKey("raw", b64uDecode(bridgePublicKeyB64u), curve, false, []);
  const ephemeral = await subtle.generateKey(curve, false, ["deriveBits"]);
  const secret = await subtle.deriveBits({ name: "ECDH", public: bridgeKey }, ephemeral.privateKey, 256);
  const hkdfKey = await subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const aesKey = await subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt, info },
    hkdfKey,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt"],
  );
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await subtle.encrypt({ name: "AES-GCM", iv, additionalData: info, tagLength: 128 }, aesKey, plain);
  const epk = await subtle.exportKey("raw", ephemeral.publicKey);
  return { v: 1, epk: b64uEncode(epk), salt: b64uEncode(salt), iv: b64uEncode(iv), ct: b64uEncode(ct) };
}

/**
 * Seal a 4-digit PIN to the bridge's P-256 public key (raw point, base64url) for one
 * context {bridgeId, commandId}; resolves to the envelope {v, epk, salt, iv, ct}.
 */
export async function sealPin(bridgePublicKeyB64u, pin, context) {
  if (typeof pin !== "string" || !/^[0-9]{4}$/.test(pin)) {
    throw new TypeError("PIN must be 4 digits");
  }
  return seal(bridgePublicKeyB64u, new TextEncoder().encode(pin), concat(LABEL, contextBytes(context)));
}

/**
 * Seal a library password (1-63 bytes of UTF-8) to the bridge's public key for one
 * context {bridgeId, purpose, binding}; resolves to the envelope {v, epk, salt, iv, ct}.
 */
export async function sealSecret(bridgePublicKeyB64u, secret, context) {
  if (typeof secret !== "string") throw new TypeError("the secret must be a string");
  const raw = new TextEncoder().encode(secret);
  if (raw.length < 1 || raw.length > SECRET_MAX_BYTES) {
    throw new RangeError("the secret must be 1-63 bytes of UTF-8");
  }
  const padded = new Uint8Array(1 + SECRET_MAX_BYTES);
  padded[0] = raw.length;
  padded.set(raw, 1);
  const info = concat(SECRET_LABEL, secretContextBytes(context));
  try {
    return await seal(bridgePublicKeyB64u, padded, info);
  } finally {
    padded.fill(0);
  }
}
