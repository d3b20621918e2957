// The REST API (/api/v1) with the dashboard's JWT; RFC 7807 problems become ApiError with their detail.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function createApi(auth) {
  async function request(path, { method = "GET", query, body } = {}) {
    const url = new URL(`/api/v1${path}`, location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
    }
    for (let attempt = 0; ; attempt++) {
      const headers = { Authorization: `Bearer ${await auth.accessToken()}`, Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      if (response.status === 401 && attempt === 0) {
        await auth.refresh();
        continue;
      }
      if (response.status === 204) return null;
      const data = await response.json().catch(() => null);
      if (!response.ok) throw new ApiError(response.status, (data && data.detail) || `${method} ${path} failed (${response.status}).`);
      return data;
    }
  }
  return { request, get: (path, query) => request(path, { query }) };
}
