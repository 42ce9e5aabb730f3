/**
 * The transport: one HTTP request to the bridge and what its response means.
 *
 * - {@link Transport} builds the URL, the headers (token, `Accept`,
 *   `Last-Event-ID`) and the body, calls `fetch`, and turns the response into
 *   a reply (`unary`) or an accepted event stream, or a {@link GravityError}.
 * - {@link CallControl} is one call's abort plumbing: the caller's signal and
 *   our own `close()`, joined in one `AbortController`.
 *
 * Whether and when a failed stream request is sent again is not decided
 * here: {@link Opened} only says what kind of failure it was, and
 * `reconnecting_stream.ts` decides.
 *
 * @internal
 * @module
 */
import {
  create,
  fromJson,
  toJson,
  toJsonString,
  type DescMessage,
  type DescMethod,
  type JsonValue,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, GravityError, codeFromHttpStatus } from "./errors.js";
import type { CallOptions, ClientOptions, Result, StreamOptions } from "./index.js";
import { queryParams } from "./query.js";

/** {@link ClientOptions.maxUrlLength}'s default. */
const MAX_URL_LENGTH = 2048;

/**
 * The longest wait a `Retry-After` header can ask for: a longer one (a
 * misconfigured proxy's, or a hostile `Retry-After: 999999`) is cut to this,
 * so no header can park a client for good.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

/** The HTTP statuses after which a stream request is sent again: a proxy's or a draining bridge's "not now". */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

export const cancelled = (signal: AbortSignal | undefined) =>
  new GravityError(Code.CANCELLED, "the call was aborted", [], { cause: signal?.reason });

export function unavailable(message: string, cause?: unknown) {
  return new GravityError(Code.UNAVAILABLE, message, [], { cause });
}

async function errorFromResponse(response: Response): Promise<GravityError> {
  const fallback = codeFromHttpStatus(response.status);
  let json: unknown;
  try {
    json = JSON.parse(await response.text());
  } catch {
    return new GravityError(fallback, `HTTP ${response.status} ${response.statusText}`.trim(), [], {
      httpStatus: response.status,
    });
  }
  return GravityError.fromStatusJson(json, fallback, response.status);
}

/**
 * A `Retry-After` header in milliseconds: delay-seconds (`"120"`) or an
 * HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, counted from `now`; a past
 * date is 0), at most {@link MAX_RETRY_AFTER_MS}. `undefined` when there is
 * no header or it is neither form.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  // Every HTTP-date form has letters (a day or month name); Date.parse alone
  // would also take "1.5" or "-1" as dates.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (!Number.isFinite(at)) return undefined;
  return Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
}

export function parseMessage<O extends DescMessage>(schema: O, text: string): MessageShape<O> {
  try {
    return fromJson(schema, JSON.parse(text) as JsonValue, { ignoreUnknownFields: true });
  } catch (e) {
    throw new GravityError(Code.INTERNAL, `cannot parse a ${schema.typeName}: ${(e as Error).message}`, [], {
      cause: e,
    });
  }
}

/** One call's abort plumbing: the caller's signal and our own close(). */
export class CallControl {
  readonly controller = new AbortController();
  closed = false;
  private readonly unlink: () => void;

  constructor(readonly userSignal: AbortSignal | undefined) {
    const onAbort = () => this.controller.abort(userSignal?.reason);
    userSignal?.addEventListener("abort", onAbort, { once: true });
    this.unlink = () => userSignal?.removeEventListener("abort", onAbort);
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  get userAborted(): boolean {
    return this.userSignal?.aborted === true;
  }
  close(): void {
    this.closed = true;
    this.release();
  }
  release(): void {
    this.unlink();
    this.controller.abort();
  }
}

/**
 * What one stream request came to:
 * - `response`: `200` with `text/event-stream`, its body not read yet;
 * - `retry: "network"`: `fetch` failed (no HTTP answer at all);
 * - `retry: "status"`: `502`, `503` or `504`, with the `Retry-After` the
 *   response asked for (capped), if any;
 * - `retry: "no"`: anything else (another HTTP error, a `200` that is not an
 *   event stream, or the call was aborted or closed).
 */
export type Opened =
  | { response: Response }
  | { error: GravityError; retry: "no" | "network" }
  | { error: GravityError; retry: "status"; retryAfterMs: number | undefined };

export class Transport {
  private readonly fetch: (input: string, init: RequestInit) => Promise<Response>;
  private readonly baseUrl: string;

  constructor(private readonly options: ClientOptions) {
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("@gravity/client: no fetch (pass options.fetch)");
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
  }

  private url(method: DescMethod): string {
    return `${this.baseUrl}/${method.parent.typeName}/${method.name}`;
  }

  private async headers(callHeaders: HeadersInit | undefined, accept: string): Promise<Headers> {
    const headers = new Headers(this.options.headers);
    new Headers(callHeaders).forEach((value, name) => headers.set(name, value));
    headers.set("Accept", accept);
    const token = typeof this.options.token === "function" ? await this.options.token() : this.options.token;
    if (token) headers.set("Authorization", `Bearer ${token}`);
    return headers;
  }

  private async send(
    url: string,
    init: RequestInit,
    control: CallControl,
  ): Promise<{ response: Response } | { error: GravityError; retry: "no" | "network" }> {
    try {
      const init2: RequestInit = { ...init, signal: control.signal };
      if (this.options.credentials !== undefined) init2.credentials = this.options.credentials;
      return { response: await this.fetch(url, init2) };
    } catch (e) {
      if (control.userAborted || control.closed) return { error: cancelled(control.userSignal), retry: "no" };
      return { error: unavailable(`cannot reach ${url}: ${(e as Error)?.message ?? e}`, e), retry: "network" };
    }
  }

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethod & { input: I; output: O },
    init: object,
    options: CallOptions,
  ): Promise<Result<MessageShape<O>>> {
    const control = new CallControl(options.signal);
    try {
      if (control.userAborted) return { error: cancelled(options.signal) };
      const body = toJsonString(method.input, create(method.input, init as MessageInitShape<I>));
      const headers = await this.headers(options.headers, "application/json");
      headers.set("Content-Type", "application/json");
      const url = this.url(method);
      const opened = await this.send(url, { method: "POST", headers, body }, control);
      if ("error" in opened) return { error: opened.error };
      const { response } = opened;
      if (!response.ok) return { error: await errorFromResponse(response) };
      let text: string;
      try {
        text = await response.text();
      } catch (e) {
        if (control.userAborted) return { error: cancelled(options.signal) };
        return { error: unavailable(`reading the reply of ${url}: ${(e as Error)?.message ?? e}`, e) };
      }
      try {
        return { data: parseMessage(method.output, text) };
      } catch (e) {
        return { error: e as GravityError };
      }
    } finally {
      control.release();
    }
  }

  /**
   * A stream call's request, ready to send: `open(lastEventId)` sends it (the
   * first time and for each reconnection) under the call's `control`.
   * Nothing is sent yet; `{ error }` (`CANCELLED`) if the signal is already
   * aborted.
   */
  streamRequest<I extends DescMessage>(
    method: DescMethod & { input: I },
    init: object,
    options: StreamOptions,
  ): { control: CallControl; open: (lastEventId: string) => Promise<Opened> } | { error: GravityError } {
    const control = new CallControl(options.signal);
    if (control.userAborted) {
      control.release();
      return { error: cancelled(options.signal) };
    }
    const message = create(method.input, init as MessageInitShape<I>);
    let url = this.url(method);
    let body: string | undefined;
    const params = options.httpMethod === "POST" ? undefined : queryParams(method.input, toJson(method.input, message));
    if (params !== undefined) {
      const query = new URLSearchParams(params).toString();
      if (query !== "") url += `?${query}`;
    }
    const maxUrlLength = this.options.maxUrlLength ?? MAX_URL_LENGTH;
    if (params === undefined || (options.httpMethod !== "GET" && url.length > maxUrlLength)) {
      url = this.url(method);
      body = toJsonString(method.input, message);
    }
    const open = async (lastEventId: string): Promise<Opened> => {
      const headers = await this.headers(options.headers, "text/event-stream");
      if (lastEventId !== "") headers.set("Last-Event-ID", lastEventId);
      const init: RequestInit =
        body === undefined ? { method: "GET", headers } : { method: "POST", headers, body };
      if (body !== undefined) headers.set("Content-Type", "application/json");
      const opened = await this.send(url, init, control);
      if ("error" in opened) return opened;
      const { response } = opened;
      if (!response.ok) {
        const retryAfter = response.headers.get("Retry-After");
        const error = await errorFromResponse(response);
        if (!RETRYABLE_STATUSES.has(response.status)) return { error, retry: "no" };
        return { error, retry: "status", retryAfterMs: parseRetryAfter(retryAfter) };
      }
      const type = response.headers.get("Content-Type") ?? "";
      if (!/^text\/event-stream\b/i.test(type) || response.body === null) {
        response.body?.cancel().catch(() => {});
        return {
          error: new GravityError(Code.INTERNAL, `expected text/event-stream from ${url}, got "${type}"`, [], {
            httpStatus: response.status,
          }),
          retry: "no",
        };
      }
      return opened;
    };

    return { control, open };
  }
}
