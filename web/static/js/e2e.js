// End-to-end encryption with WebCrypto only.
//
// Each device has an RSA-OAEP (SHA-256, 2048-bit) key pair. The private key
// is generated non-extractable and kept in IndexedDB: it can decrypt in
// this browser and can never be read out, not even by this code. The
// public key goes to the server as PEM (SPKI).
//
// A message is AES-256-GCM with a fresh key and a 12-byte IV; the AES key
// is wrapped (RSA-OAEP) for every device of every reader, the sender's own
// devices included. The wire format (the message's encryptedContent) is
// documented in README.md, "Web client":
//   {"v":1,"message":b64,"iv":b64,"keys":{deviceId:b64},"key":b64}

const RSA = { name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
const te = new TextEncoder();
const td = new TextDecoder();

/** @param {ArrayBuffer | Uint8Array} buf */
export function b64(buf) {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** @param {string} s @returns {Uint8Array<ArrayBuffer>} */
export function unb64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** @param {ArrayBuffer} spki */
function toPEM(spki) {
  const body = b64(spki).replace(/.{64}/g, '$&\n');
  return `-----BEGIN PUBLIC KEY-----\n${body}${body.endsWith('\n') ? '' : '\n'}-----END PUBLIC KEY-----\n`;
}

/** @param {string} pem */
function fromPEM(pem) {
  return unb64(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));
}

/**
 * @typedef {{username: string, deviceId: string, privateKey: CryptoKey, publicKeyPem: string}} DeviceKeys
 */

/** Makes a new device: a random id and a key pair whose private half cannot be exported. */
export async function newDevice(username) {
  const pair = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey(RSA, false, ['encrypt', 'decrypt']));
  const spki = await crypto.subtle.exportKey('spki', pair.publicKey);
  const id = new Uint8Array(12);
  crypto.getRandomValues(id);
  const deviceId = 'web_' + b64(id).replace(/[+/=]/g, (c) => ({ '+': '-', '/': '_', '=': '' })[c]);
  return /** @type {DeviceKeys} */ ({ username: username.toLowerCase(), deviceId, privateKey: pair.privateKey, publicKeyPem: toPEM(spki) });
}

// ---- IndexedDB: device keys (by username) and the signed-in session ----

/** @returns {Promise<IDBDatabase>} */
function openDB() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open('parley', 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore('devices', { keyPath: 'username' });
      req.result.createObjectStore('kv');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * @param {string} store
 * @param {IDBTransactionMode} mode
 * @param {(s: IDBObjectStore) => IDBRequest} fn
 * @returns {Promise<any>}
 */
async function idb(store, mode, fn) {
  const db = await openDB();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode);
      const req = fn(tx.objectStore(store));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** @param {string} username @returns {Promise<DeviceKeys | undefined>} */
export function loadDevice(username) {
  return idb('devices', 'readonly', (s) => s.get(username.toLowerCase()));
}

/** @param {DeviceKeys} d */
export function saveDevice(d) {
  return idb('devices', 'readwrite', (s) => s.put(d));
}

/** @param {string} key @returns {Promise<any>} */
export function kvGet(key) {
  return idb('kv', 'readonly', (s) => s.get(key));
}

/** @param {string} key @param {any} value */
export function kvSet(key, value) {
  return idb('kv', 'readwrite', (s) => s.put(value, key));
}

/** @param {string} key */
export function kvDelete(key) {
  return idb('kv', 'readwrite', (s) => s.delete(key));
}

// ---- Messages ----

/** @type {Map<string, Promise<CryptoKey>>} */
const publicKeys = new Map();

/** @param {string} pem */
function importPublic(pem) {
  let k = publicKeys.get(pem);
  if (!k) {
    k = crypto.subtle.importKey('spki', fromPEM(pem), RSA, false, ['encrypt']);
    publicKeys.set(pem, k);
  }
  return k;
}

/**
 * @typedef {{deviceId: string, publicKey: string}} DeviceKey
 */

/**
 * Wraps a fresh AES key for every reader device.
 * @param {DeviceKey[]} devices
 * @returns {Promise<{aes: CryptoKey, keys: Record<string, string>}>}
 */
async function freshKey(devices) {
  const aes = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
  const raw = await crypto.subtle.exportKey('raw', aes);
  /** @type {Record<string, string>} */
  const keys = {};
  for (const d of devices) {
    if (!d.publicKey || keys[d.deviceId]) continue;
    try {
      keys[d.deviceId] = b64(await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, await importPublic(d.publicKey), raw));
    } catch {
      // A device whose key is not an RSA-OAEP SPKI cannot read web messages.
    }
  }
  return { aes, keys };
}

/**
 * Encrypts a message body (any JSON value) for the given devices.
 * @param {any} body
 * @param {DeviceKey[]} devices every device that may read it, the sender's included
 * @param {string} [primary] the device whose wrapped key is also put in "key" (seed format)
 * @returns {Promise<string>} the encryptedContent
 */
export async function encryptMessage(body, devices, primary) {
  const { aes, keys } = await freshKey(devices);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, aes, te.encode(JSON.stringify(body)));
  /** @type {Record<string, any>} */
  const out = { v: 1, message: b64(ct), iv: b64(iv), keys };
  if (primary && keys[primary]) out.key = keys[primary];
  return JSON.stringify(out);
}

/**
 * Decrypts an encryptedContent with this device's private key.
 * @param {string} content
 * @param {DeviceKeys} me
 * @returns {Promise<any>} the body, or throws when this device cannot read it
 */
export async function decryptMessage(content, me) {
  const env = JSON.parse(content);
  const wrapped = (env.keys && env.keys[me.deviceId]) || env.key;
  if (!wrapped) throw new Error('not encrypted for this device');
  const raw = await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, me.privateKey, unb64(wrapped));
  const aes = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt']);
  const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(env.iv) }, aes, unb64(env.message));
  return JSON.parse(td.decode(pt));
}

// ---- Shared keys (community channels) ----
//
// A channel has one AES-256-GCM key. In an end-to-end encrypted channel it
// travels to each reader as a "wrapped key": the JSON
//   {"v":1,"keys":{deviceId: b64 RSA-OAEP(raw key)}}
// with one entry per device of that reader. In a trusted community's public
// channel it is the community key, base64 of the raw key, which the server
// hands to every member. A channel message's content is
//   {"v":1,"message":b64,"iv":b64,"kid":b64}
// ("kid" names the key, see sharedKeyId; older contents have none).
// (AES-GCM over the JSON body, no per-message key).

/** Makes a fresh channel key (extractable, so that it can be wrapped for readers). */
export function newSharedKey() {
  return /** @type {Promise<CryptoKey>} */ (crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']));
}

/** @param {CryptoKey} key @returns {Promise<string>} base64 of the raw key */
export async function exportSharedKey(key) {
  return b64(await crypto.subtle.exportKey('raw', key));
}

/** @param {string} raw base64 of a raw AES-256 key @returns {Promise<CryptoKey>} */
export function importSharedKey(raw) {
  return crypto.subtle.importKey('raw', unb64(raw), 'AES-GCM', true, ['encrypt', 'decrypt']);
}

/**
 * Wraps a shared key for every device given; throws when none can take it.
 * @param {CryptoKey} key
 * @param {DeviceKey[]} devices
 * @returns {Promise<string>} the wrapped key
 */
export async function wrapSharedKey(key, devices) {
  const raw = await crypto.subtle.exportKey('raw', key);
  /** @type {Record<string, string>} */
  const keys = {};
  for (const d of devices) {
    if (!d.publicKey || keys[d.deviceId]) continue;
    try {
      keys[d.deviceId] = b64(await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, await importPublic(d.publicKey), raw));
    } catch {
      // A device whose key is not an RSA-OAEP SPKI cannot read web messages.
    }
  }
  if (!Object.keys(keys).length) throw new Error('no device of this person can receive the key');
  return JSON.stringify({ v: 1, keys });
}

/**
 * Unwraps a shared key with this device's private key.
 * @param {string} wrapped
 * @param {DeviceKeys} me
 * @returns {Promise<CryptoKey>} or throws when it was not wrapped for this device
 */
export async function unwrapSharedKey(wrapped, me) {
  const env = JSON.parse(wrapped);
  const k = env && env.keys && env.keys[me.deviceId];
  if (!k) throw new Error('key not wrapped for this device');
  const raw = await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, me.privateKey, unb64(k));
  return crypto.subtle.importKey('raw', raw, 'AES-GCM', true, ['encrypt', 'decrypt']);
}

/**
 * Encrypts a message body (any JSON value) with a shared key.
 * @param {any} body
 * @param {CryptoKey} key
 * @returns {Promise<string>} the content
 */
export async function encryptShared(body, key) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, te.encode(JSON.stringify(body)));
  return JSON.stringify({ v: 1, message: b64(ct), iv: b64(iv), kid: await sharedKeyId(key) });
}

/**
 * The id of a shared key: the first 12 bytes of the SHA-256 of the raw key,
 * base64. It names the key a content was made with (its "kid"), so that a
 * reader holding several keys of a rotated channel picks the right one; it
 * reveals nothing usable about the key.
 * @param {CryptoKey} key
 * @returns {Promise<string>}
 */
export async function sharedKeyId(key) {
  const raw = await crypto.subtle.exportKey('raw', key);
  return b64(new Uint8Array(await crypto.subtle.digest('SHA-256', raw)).slice(0, 12));
}

/**
 * The key id a content made by encryptShared names ('' for contents made
 * before key ids, or unreadable ones).
 * @param {string} content
 * @returns {string}
 */
export function sharedContentKeyId(content) {
  try {
    const env = JSON.parse(content);
    return env && typeof env.kid === 'string' ? env.kid : '';
  } catch {
    return '';
  }
}

/**
 * Decrypts a content made by encryptShared.
 * @param {string} content
 * @param {CryptoKey} key
 * @returns {Promise<any>} the body, or throws when the key does not fit
 */
export async function decryptShared(content, key) {
  const env = JSON.parse(content);
  const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(env.iv) }, key, unb64(env.message));
  return JSON.parse(td.decode(pt));
}

// ---- Files ----

/**
 * Encrypts a file and its thumbnail with one fresh AES key (two IVs).
 * The key travels inside the (encrypted) message that shares the file.
 * @param {ArrayBuffer} data
 * @param {ArrayBuffer | null} thumb
 */
export async function encryptFile(data, thumb) {
  const aes = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const thumbIv = crypto.getRandomValues(new Uint8Array(12));
  const body = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, aes, data);
  const thumbBody = thumb ? await crypto.subtle.encrypt({ name: 'AES-GCM', iv: thumbIv }, aes, thumb) : null;
  return { body, thumbBody, key: b64(await crypto.subtle.exportKey('raw', aes)), iv: b64(iv), thumbIv: b64(thumbIv) };
}

/**
 * @param {ArrayBuffer} data
 * @param {string} key base64 raw AES key
 * @param {string} iv base64
 */
export async function decryptFile(data, key, iv) {
  const aes = await crypto.subtle.importKey('raw', unb64(key), 'AES-GCM', false, ['decrypt']);
  return crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(iv) }, aes, data);
}

// ---- Safety code ----

/**
 * A code two people compare to know they see each other's real keys: a
 * SHA-256 over both users' ids and device keys, in an order that does not
 * depend on who computes it, shown as 12 groups of 5 digits.
 * @param {{userId: string, devices: DeviceKey[]}} a
 * @param {{userId: string, devices: DeviceKey[]}} b
 */
export async function safetyCode(a, b) {
  const part = (/** @type {{userId: string, devices: DeviceKey[]}} */ u) =>
    u.userId + '\n' + u.devices.map((d) => d.deviceId + '=' + d.publicKey.replace(/\s+/g, '')).sort().join('\n');
  const text = [part(a), part(b)].sort().join('\n--\n');
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', te.encode(text)));
  const groups = [];
  for (let i = 0; i < 12; i++) {
    // 20 bits per group (2.5 bytes), reduced to 5 digits
    const n = ((h[i * 2] << 12) | (h[i * 2 + 1] << 4) | (h[24 + (i % 8)] & 0x0f)) % 100000;
    groups.push(String(n).padStart(5, '0'));
  }
  return groups.join(' ');
}
