/** The console's requests to the daemon; errors carry the daemon's message and problems. */
export class ApiError extends Error {
  readonly status: number;
  readonly problems: string[];
  constructor(status: number, message: string, problems: string[] = []) {
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { message?: string; problems?: string[] };
    return new ApiError(res.status, body.message ?? `${res.status} ${res.statusText}`, body.problems ?? []);
  } catch {
    return new ApiError(res.status, text.trim() || `${res.status} ${res.statusText}`);
  }
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { cache: "no-store" });
  if (!res.ok && res.status !== 503) throw await errorOf(res);
  return (await res.json()) as T;
}

export async function putJson<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

/** The WebSocket URL of a path on this page's own host. */
export function wsUrl(path: string): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}
