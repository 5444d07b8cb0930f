// The REST client: the JSON envelope, the bearer token in a header (never
// in a URL), and errors that carry the server's code and message.

/** An error answered by the server's envelope (or a network failure). */
export class ApiError extends Error {
  /**
   * @param {string} code the envelope's error code, or "network"
   * @param {string} message the envelope's message, shown to people as is
   * @param {number} status the HTTP status, 0 when the request never got an answer
   */
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export class Api {
  constructor() {
    /** @type {string} */
    this.token = '';
    /** @type {(() => void) | null} called when the server says the session is over */
    this.onUnauthorized = null;
  }

  /**
   * Calls a JSON route and returns the envelope's data.
   * @param {string} method
   * @param {string} path
   * @param {any} [body]
   * @returns {Promise<any>}
   */
  async call(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (this.token) headers.Authorization = 'Bearer ' + this.token;
    /** @type {RequestInit} */
    const init = { method, headers, credentials: 'omit', cache: 'no-store' };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch {
      throw new ApiError('network', 'Cannot reach the server. Check your connection.', 0);
    }
    let env = null;
    try {
      env = await res.json();
    } catch {
      // not JSON: handled below
    }
    if (!env || typeof env !== 'object') {
      throw new ApiError('internal', `Unexpected answer from the server (HTTP ${res.status}).`, res.status);
    }
    if (!env.success) {
      const e = env.error || {};
      if (res.status === 401 && this.token && this.onUnauthorized) this.onUnauthorized();
      throw new ApiError(e.code || 'internal', e.message || `HTTP ${res.status}`, res.status);
    }
    return env.data;
  }

  /**
   * Downloads raw bytes (media content) with the token in a header.
   * @param {string} path
   * @returns {Promise<ArrayBuffer>}
   */
  async bytes(path) {
    const res = await fetch(path, { headers: { Authorization: 'Bearer ' + this.token }, credentials: 'omit' });
    if (!res.ok) throw new ApiError('not_found', `Download failed (HTTP ${res.status}).`, res.status);
    return res.arrayBuffer();
  }

  /** @param {string} path */
  get(path) { return this.call('GET', path); }
  /** @param {string} path @param {any} [body] */
  post(path, body) { return this.call('POST', path, body === undefined ? {} : body); }
  /** @param {string} path @param {any} body */
  put(path, body) { return this.call('PUT', path, body); }
  /** @param {string} path */
  del(path) { return this.call('DELETE', path); }
}
