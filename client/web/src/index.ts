/**
 * `@gravity/client`: call gravity services through `gravity-bridge` from
 * browsers and Node, typed from the services' `.proto` files.
 *
 * ```ts
 * import { createApi } from "@gravity/client";
 * import { Streaming } from "@gravity/client/dist/gen/streaming/v1/streaming_pb.js";
 *
 * const api = createApi({ baseUrl: "http://127.0.0.1:8080" }, { streaming: Streaming });
 * const { data, error } = await api.streaming.ping({ to: "Gravity", count: 3 });
 * if (error) { console.error(error); return; }
 * for await (const message of data) console.log(message.seq, message.message);
 * ```
 *
 * Server-streaming methods:
 * - the promise resolves once the response headers have arrived: `{ data }`
 *   on `200`, else `{ error }` (a {@link GravityError} from the bridge's Status
 *   JSON; code 14 `UNAVAILABLE` when the bridge could not be reached; code 1
 *   `CANCELLED` when the call's signal was aborted);
 * - `for await (const m of data)` yields each message, parsed with
 *   `fromJson(schema, json, { ignoreUnknownFields: true })`;
 * - the loop ends normally on the bridge's `end` event with code 0; an `end`
 *   with any other code is thrown from the loop as a {@link GravityError},
 *   after every message that came before it;
 * - a stream cut without `end` (a network error, or the bridge's `retry:` cut
 *   when the backend is down or draining) is resumed inside the loop: the
 *   client reconnects with `Last-Event-ID` set to the last event id it saw, so
 *   the loop sees each message once. See {@link ClientOptions.maxReconnects};
 * - aborting the signal throws a `CANCELLED` GravityError from the loop;
 *   `break` (or {@link GravityStream.close}) ends it quietly. Both close the
 *   HTTP request, and the bridge cancels the upstream gRPC call.
 *
 * Unary methods resolve to `{ data: message }` or `{ error }`.
 *
 * @packageDocumentation
 */
import {
  create,
  fromJson,
  toJson,
  toJsonString,
  type DescMessage,
  type DescMethod,
  type DescService,
  type JsonValue,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { Code, GravityError, codeFromHttpStatus } from "./errors.js";
import { queryParams } from "./query.js";
import { SseParser } from "./sse_parser.js";

export { Code, GravityError, codeFromHttpStatus } from "./errors.js";
export type { CodeNumber, StatusDetail } from "./errors.js";
export { SseParser } from "./sse_parser.js";
export type { SseEvent, SseParserOptions } from "./sse_parser.js";
export { queryParams } from "./query.js";

/** What {@link ClientOptions.onReconnect} is told before each reconnection. */
export interface ReconnectInfo {
  /** The method, `"streaming.v1.Streaming/Ping"`. */
  readonly method: string;
  /** 1 for the first attempt after a cut; back to 1 once a message arrives. */
  readonly attempt: number;
  /** How long the client waits before this attempt, in milliseconds. */
  readonly delayMs: number;
  /** The `Last-Event-ID` the attempt sends (`""`: none yet). */
  readonly lastEventId: string;
  /** Why the stream needs a reconnection (always `UNAVAILABLE`). */
  readonly error: GravityError;
}

/** Options of {@link createApi}; every call uses them. */
export interface ClientOptions {
  /**
   * The bridge's URL, e.g. `"http://127.0.0.1:8080"`; `""` for the page's own
   * origin. Methods are called at `<baseUrl>/<package.Service>/<Method>`.
   */
  baseUrl: string;
  /**
   * A bearer token sent as `Authorization: Bearer <token>` (what the server's
   * `RequireBearerToken` guard checks); a function is called for every
   * request, reconnections included.
   */
  token?: string | (() => string | undefined | Promise<string | undefined>);
  /** `fetch`'s `credentials` (`"include"` to send cookies cross-origin). */
  credentials?: RequestCredentials;
  /** Headers sent with every request. */
  headers?: HeadersInit;
  /** The `fetch` to use (default: the global one). */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /**
   * Reconnection attempts in a row, without a message in between, before a
   * cut stream gives up and throws `UNAVAILABLE` from the loop. Default 10;
   * 0 never reconnects.
   */
  maxReconnects?: number;
  /**
   * The first reconnection's delay when the bridge sent no `retry:`; with a
   * `retry:` that value is used. Attempt n waits `min(max(maxRetryDelayMs, base),
   * base × 2^(n−1))`, plus a random 0–50 % of that. Default 1000.
   */
  retryDelayMs?: number;
  /** The cap of the exponential backoff (default 30000; never below the bridge's `retry:`). */
  maxRetryDelayMs?: number;
  /**
   * A server-streaming request is sent as a GET with query parameters when
   * its URL stays within this many characters (default 2048), else as a POST
   * with a JSON body. Requests a query cannot express (maps, repeated
   * messages, well-known types, an empty nested message) are always POSTed.
   */
  maxUrlLength?: number;
  /** Called before each reconnection of a stream (see {@link ReconnectInfo}). */
  onReconnect?: (info: ReconnectInfo) => void;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call: see {@link GravityStream}. */
  signal?: AbortSignal;
  /** Headers for this call, on top of {@link ClientOptions.headers}. */
  headers?: HeadersInit;
}

/** Per-call options of a server-streaming method. */
export interface StreamOptions extends CallOptions {
  /** Resume after this event id: sent as `Last-Event-ID` on the first request. */
  lastEventId?: string;
  /** Overrides {@link ClientOptions.onReconnect} for this call. */
  onReconnect?: (info: ReconnectInfo) => void;
  /** Overrides {@link ClientOptions.maxReconnects} for this call. */
  maxReconnects?: number;
  /** Force GET (query) or POST (JSON body); by default GET when the query can say it. */
  httpMethod?: "GET" | "POST";
}

/**
 * The result of a call: `{ data }` or `{ error }`, never both.
 *
 * ```ts
 * const { data, error } = await api.streaming.ping({ to: "Gravity" });
 * if (error) return console.error(error.code, error.message);
 * ```
 */
export type Result<T> = { data: T; error?: undefined } | { data?: undefined; error: GravityError };

/**
 * The messages of an accepted server stream. Iterate it once with
 * `for await`:
 * - the loop ends when the stream ends with code 0;
 * - it throws a {@link GravityError} when the stream ends with another code
 *   (after yielding every message before the end), when it was cut and could
 *   not be resumed within `maxReconnects` attempts (`UNAVAILABLE`, 14), when
 *   a reconnection got an HTTP error (that error: no further attempt), or when
 *   the call's signal is aborted (`CANCELLED`, 1);
 * - `break`, `return` or a throw in the loop body closes the request, so the
 *   bridge cancels the upstream call.
 *
 * A stream that is never iterated keeps its connection open until
 * {@link GravityStream.close} or the signal.
 */
export interface GravityStream<T> extends AsyncIterable<T> {
  /** The last event id seen (what a reconnection sends as `Last-Event-ID`). */
  readonly lastEventId: string;
  /** How many reconnections this stream has made so far. */
  readonly reconnects: number;
  /** Closes the request; a loop over the stream then ends without an error. */
  close(): void;
}

/** A server-streaming method: resolves when the response headers arrive. */
export type StreamMethod<I extends DescMessage, O extends DescMessage> = (
  request?: MessageInitShape<I>,
  options?: StreamOptions,
) => Promise<Result<GravityStream<MessageShape<O>>>>;

/** A unary method: resolves with the reply or the error. */
export type UnaryMethod<I extends DescMessage, O extends DescMessage> = (
  request?: MessageInitShape<I>,
  options?: CallOptions,
) => Promise<Result<MessageShape<O>>>;

type MethodClient<M> = M extends {
  methodKind: "server_streaming";
  input: infer I extends DescMessage;
  output: infer O extends DescMessage;
}
  ? StreamMethod<I, O>
  : M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? UnaryMethod<I, O>
    : never;

/**
 * A service's client: one function per unary or server-streaming method,
 * named as the generated code names it (`ping`, `streamUsers`). Client- and
 * bidi-streaming methods are left out (the bridge does not serve them).
 */
export type ServiceClient<S extends GenService<GenServiceMethods>> = {
  [K in keyof S["method"] as S["method"][K] extends { methodKind: "server_streaming" | "unary" }
    ? K
    : never]: MethodClient<S["method"][K]>;
};

/** The API object of {@link createApi}: one {@link ServiceClient} per key. */
export type Api<Services extends Record<string, GenService<GenServiceMethods>>> = {
  [K in keyof Services]: ServiceClient<Services[K]>;
};

const DEFAULTS = {
  maxReconnects: 10,
  retryDelayMs: 1000,
  maxRetryDelayMs: 30000,
  maxUrlLength: 2048,
};

/**
 * Creates the API object: `createApi(options, { streaming: Streaming })`
 * gives `api.streaming.ping(request, options)` and so on, typed from the
 * generated service descriptors (protoc-gen-es v2).
 */
export function createApi<Services extends Record<string, GenService<GenServiceMethods>>>(
  options: ClientOptions,
  services: Services,
): Api<Services> {
  const transport = new Transport(options);
  const api: Record<string, Record<string, unknown>> = {};
  for (const [key, service] of Object.entries(services)) {
    const client: Record<string, unknown> = {};
    for (const method of (service as DescService).methods) {
      if (method.methodKind === "server_streaming") {
        client[method.localName] = (request?: object, callOptions?: StreamOptions) =>
          transport.stream(method, request ?? {}, callOptions ?? {});
      } else if (method.methodKind === "unary") {
        client[method.localName] = (request?: object, callOptions?: CallOptions) =>
          transport.unary(method, request ?? {}, callOptions ?? {});
      }
    }
    api[key] = client;
  }
  return api as Api<Services>;
}

// --- transport ---------------------------------------------------------------

const cancelled = (signal: AbortSignal | undefined) =>
  new GravityError(Code.CANCELLED, "the call was aborted", [], { cause: signal?.reason });

function unavailable(message: string, cause?: unknown) {
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

function parseMessage<O extends DescMessage>(schema: O, text: string): MessageShape<O> {
  try {
    return fromJson(schema, JSON.parse(text) as JsonValue, { ignoreUnknownFields: true });
  } catch (e) {
    throw new GravityError(Code.INTERNAL, `cannot parse a ${schema.typeName}: ${(e as Error).message}`, [], {
      cause: e,
    });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The delay before reconnection attempt `attempt` (1-based). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const ceiling = Math.max(capMs, baseMs);
  const exp = Math.min(ceiling, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(exp * (1 + 0.5 * random()));
}

/** One call's abort plumbing: the caller's signal and our own close(). */
class CallControl {
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

type Opened = { response: Response } | { error: GravityError; retryable: boolean };

class Transport {
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

  private async send(url: string, init: RequestInit, control: CallControl): Promise<Opened> {
    try {
      const init2: RequestInit = { ...init, signal: control.signal };
      if (this.options.credentials !== undefined) init2.credentials = this.options.credentials;
      return { response: await this.fetch(url, init2) };
    } catch (e) {
      if (control.userAborted || control.closed) return { error: cancelled(control.userSignal), retryable: false };
      return { error: unavailable(`cannot reach ${url}: ${(e as Error)?.message ?? e}`, e), retryable: true };
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

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethod & { input: I; output: O },
    init: object,
    options: StreamOptions,
  ): Promise<Result<GravityStream<MessageShape<O>>>> {
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
    const maxUrlLength = this.options.maxUrlLength ?? DEFAULTS.maxUrlLength;
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
      if (!response.ok) return { error: await errorFromResponse(response), retryable: false };
      const type = response.headers.get("Content-Type") ?? "";
      if (!/^text\/event-stream\b/i.test(type) || response.body === null) {
        response.body?.cancel().catch(() => {});
        return {
          error: new GravityError(Code.INTERNAL, `expected text/event-stream from ${url}, got "${type}"`, [], {
            httpStatus: response.status,
          }),
          retryable: false,
        };
      }
      return opened;
    };

    const first = await open(options.lastEventId ?? "");
    if ("error" in first) {
      control.release();
      return { error: first.error };
    }
    const stream = new Stream<O>({
      method,
      control,
      open,
      first: first.response,
      lastEventId: options.lastEventId ?? "",
      maxReconnects: options.maxReconnects ?? this.options.maxReconnects ?? DEFAULTS.maxReconnects,
      retryDelayMs: this.options.retryDelayMs ?? DEFAULTS.retryDelayMs,
      maxRetryDelayMs: this.options.maxRetryDelayMs ?? DEFAULTS.maxRetryDelayMs,
      onReconnect: options.onReconnect ?? this.options.onReconnect,
    });
    return { data: stream };
  }
}

interface StreamState<O extends DescMessage> {
  method: DescMethod & { output: O };
  control: CallControl;
  open: (lastEventId: string) => Promise<Opened>;
  first: Response;
  lastEventId: string;
  maxReconnects: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  onReconnect: ((info: ReconnectInfo) => void) | undefined;
}

class Stream<O extends DescMessage> implements GravityStream<MessageShape<O>> {
  private iterated = false;
  private retryMs: number | undefined;
  lastEventId: string;
  reconnects = 0;

  constructor(private readonly state: StreamState<O>) {
    this.lastEventId = state.lastEventId;
  }

  close(): void {
    this.state.control.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<MessageShape<O>> {
    if (this.iterated) throw new TypeError("@gravity/client: a stream can be iterated once");
    this.iterated = true;
    const generator = this.messages();
    const control = this.state.control;
    // return() on a generator that never started skips its finally blocks:
    // release the request here too, so it is closed whatever the caller did.
    return {
      next: () => generator.next(),
      return: async (value?: unknown) => {
        try {
          return await generator.return(value as undefined);
        } finally {
          control.release();
        }
      },
      throw: async (error?: unknown) => {
        try {
          return await generator.throw(error);
        } finally {
          control.release();
        }
      },
    };
  }

  private async *messages(): AsyncGenerator<MessageShape<O>, void, undefined> {
    const { control, method } = this.state;
    const name = `${method.parent.typeName}/${method.name}`;
    let response: Response | undefined = this.state.first;
    let failures = 0;
    let cut: GravityError = unavailable(`${name}: the stream was cut`);
    try {
      for (;;) {
        if (response !== undefined) {
          const reader = response.body!.getReader();
          const parser = new SseParser({ lastEventId: this.lastEventId });
          try {
            for (;;) {
              let chunk: ReadableStreamReadResult<Uint8Array>;
              try {
                chunk = await reader.read();
              } catch (e) {
                if (control.closed) return;
                if (control.userAborted) throw cancelled(control.userSignal);
                cut = unavailable(`${name}: the connection failed: ${(e as Error)?.message ?? e}`, e);
                break;
              }
              if (chunk.done) {
                parser.end();
                cut = unavailable(`${name}: the stream was cut without an end event`);
                break;
              }
              const events = parser.push(chunk.value);
              if (parser.retry !== undefined) this.retryMs = parser.retry;
              for (const event of events) {
                this.lastEventId = event.lastEventId;
                if (event.type === "message") {
                  const message = parseMessage(method.output, event.data);
                  failures = 0;
                  yield message;
                } else if (event.type === "end") {
                  let status: unknown;
                  try {
                    status = JSON.parse(event.data);
                  } catch {
                    status = undefined;
                  }
                  // proto3 JSON may leave out a code of 0.
                  const fallback = status !== null && typeof status === "object" ? Code.OK : Code.INTERNAL;
                  const error = GravityError.fromStatusJson(status, fallback);
                  if (error.code !== Code.OK) throw error;
                  return;
                }
              }
              this.lastEventId = parser.lastEventId;
            }
          } finally {
            reader.cancel().catch(() => {});
          }
        }
        if (control.closed) return;
        if (control.userAborted) throw cancelled(control.userSignal);
        failures++;
        if (failures > this.state.maxReconnects) {
          throw unavailable(
            `${cut.message}; not resumed after ${this.state.maxReconnects} reconnection attempt(s)`,
            cut,
          );
        }
        const delayMs = backoffDelay(
          failures,
          this.retryMs ?? this.state.retryDelayMs,
          this.state.maxRetryDelayMs,
        );
        this.reconnects++;
        this.state.onReconnect?.({ method: name, attempt: failures, delayMs, lastEventId: this.lastEventId, error: cut });
        try {
          await sleep(delayMs, control.signal);
        } catch {
          if (control.closed) return;
          throw cancelled(control.userSignal);
        }
        const opened = await this.state.open(this.lastEventId);
        if ("error" in opened) {
          if (control.closed) return;
          if (!opened.retryable) throw opened.error;
          cut = opened.error;
          response = undefined;
        } else {
          response = opened.response;
        }
      }
    } finally {
      control.release();
    }
  }
}
