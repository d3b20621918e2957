// Login: the API key is exchanged once for a short-lived JWT (POST /api/v1/auth/token) and the token is
// refreshed before it expires. The key lives only in memory and sessionStorage (this tab), never in a
// URL or a log line.

const STORAGE_KEY = "voicehub.apiKey";

export class AuthError extends Error {}

export class Auth {
  constructor() {
    this.key = null;
    this.token = null;
    this.expiresAt = 0;
    this.margin = 30_000;
    this.claims = {};
    this.timer = 0;
    this.pending = null;
    this.onLost = () => {};
  }

  /** Signs in again with the key this tab already holds, if any. */
  async restore() {
    const key = sessionStorage.getItem(STORAGE_KEY);
    if (!key) return false;
    this.key = key;
    await this.refresh();
    return true;
  }

  async login(apiKey) {
    const key = apiKey.trim();
    if (!/^vsnp_(live|sb)_\S+$/.test(key)) throw new AuthError("That does not look like an API key (vsnp_live_… or vsnp_sb_…).");
    this.key = key;
    try {
      await this.refresh();
    } catch (error) {
      this.key = null;
      throw error;
    }
    sessionStorage.setItem(STORAGE_KEY, key);
  }

  logout() {
    clearTimeout(this.timer);
    sessionStorage.removeItem(STORAGE_KEY);
    this.key = null;
    this.token = null;
    this.claims = {};
  }

  get subject() {
    return this.claims.sub || "";
  }

  has(scope) {
    return String(this.claims.scp || "").split(" ").includes(scope);
  }

  /** The current JWT, refreshed first when it is about to expire. */
  async accessToken() {
    if (!this.token || Date.now() > this.expiresAt - this.margin) await this.refresh();
    return this.token;
  }

  refresh() {
    if (!this.pending) {
      this.pending = this.exchange().finally(() => { this.pending = null; });
    }
    return this.pending;
  }

  async exchange() {
    if (!this.key) throw new AuthError("Not signed in.");
    let response;
    try {
      response = await fetch("/api/v1/auth/token", {
        method: "POST",
        headers: { Authorization: `Bearer ${this.key}`, Accept: "application/json" },
      });
    } catch {
      throw new AuthError("The hub cannot be reached.");
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      const error = new AuthError(problem.detail || `Sign-in failed (${response.status}).`);
      error.status = response.status;
      if (response.status === 401 || response.status === 403) {
        this.logout();
        this.onLost(error.message);
      }
      throw error;
    }
    const body = await response.json();
    this.token = body.accessToken;
    this.claims = decodeClaims(body.accessToken);
    const ttl = Math.max(10, Number(body.expiresIn) || 900);
    this.expiresAt = Date.now() + ttl * 1000;
    this.margin = Math.min(30_000, ttl * 200); // a token this close to its end is replaced before use
    clearTimeout(this.timer);
    const refreshIn = Math.max(5, Math.min(ttl * 0.8, ttl - 60));
    this.timer = setTimeout(() => { this.refresh().catch(() => {}); }, refreshIn * 1000);
    return this.token;
  }
}

function decodeClaims(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}
