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
 *   `CANCELLED` when the call's signal was aborted). A `502`, `503` or `504`
 *   (a draining bridge, a proxy during a deploy) is first tried again like a
 *   reconnection, waiting at least its `Retry-After`;
 * - `for await (const m of data)` yields each message, parsed with
 *   `fromJson(schema, json, { ignoreUnknownFields: true })`;
 * - the loop ends normally on the bridge's `end` event with code 0; an `end`
 *   with any other code is thrown from the loop as a {@link GravityError},
 *   after every message that came before it;
 * - a stream cut without `end` (a network error, or the bridge's `retry:` cut
 *   when the backend is down or draining, or the subscriber too slow) is
 *   resumed inside the loop: the client reconnects with `Last-Event-ID` set to
 *   the last event id it saw, so the loop sees each message once. A
 *   reconnection answered `502`, `503` or `504` is tried again the same way
 *   (at least its `Retry-After` later, capped at 60 s); any other HTTP error
 *   is thrown from the loop. See {@link ClientOptions.maxReconnects};
 * - aborting the signal throws a `CANCELLED` GravityError from the loop;
 *   `break` (or {@link GravityStream.close}) ends it quietly. Both close the
 *   HTTP request, and the bridge cancels the upstream gRPC call.
 *
 * Unary methods resolve to `{ data: message }` or `{ error }`.
 *
 * @packageDocumentation
 */
import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { GravityError } from "./errors.js";
import { RECONNECT_DEFAULTS, openReconnectingStream } from "./reconnecting_stream.js";
import { Transport } from "./transport.js";

export { Code, GravityError, codeFromHttpStatus } from "./errors.js";
export type { CodeNumber, StatusDetail } from "./errors.js";
export { SseParser } from "./sse_parser.js";
export type { SseEvent, SseParserOptions } from "./sse_parser.js";
export { queryParams } from "./query.js";
export { backoffDelay } from "./reconnecting_stream.js";

/** What {@link ClientOptions.onReconnect} is told before each reconnection. */
export interface ReconnectInfo {
  /** The method, `"streaming.v1.Streaming/Ping"`. */
  readonly method: string;
  /**
   * 1 for the first attempt after a cut (or after the first request's `502`,
   * `503` or `504`); back to 1 once a message arrives.
   */
  readonly attempt: number;
  /**
   * How long the client waits before this attempt, in milliseconds: the
   * backoff, or the response's `Retry-After` (capped at 60 s) when that is
   * longer, plus a random 0–50 %.
   */
  readonly delayMs: number;
  /** The `Last-Event-ID` the attempt sends (`""`: none yet). */
  readonly lastEventId: string;
  /**
   * Why the stream needs a reconnection: `UNAVAILABLE` for a cut or a network
   * failure, else the `502`/`503`/`504` response's error (its `httpStatus`
   * set, its code from the Status JSON: `UNAVAILABLE`, or
   * `DEADLINE_EXCEEDED` for the bridge's 504).
   */
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
   * `RequireBearerToken` or `RequireJwt` guard checks); a function is called
   * for every request, reconnections included: the place to fetch or refresh
   * a short-lived token. When a JWT expires mid-stream, the bridge cuts the
   * stream with `retry:` (no `end`); the client reconnects, calling the
   * function again, and resumes after `Last-Event-ID`, losing nothing.
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
   * 0 never reconnects. The same budget bounds the retries of a first
   * request answered `502`, `503` or `504` (the call then resolves to the
   * last one's `{ error }`); those retries count on into the stream's.
   */
  maxReconnects?: number;
  /**
   * The first reconnection's delay when the bridge sent no `retry:`; with a
   * `retry:` that value is used. Attempt n waits `min(max(maxRetryDelayMs, base),
   * base × 2^(n−1))`, or the last response's `Retry-After` (at most 60 s) when
   * that is longer, plus a random 0–50 % of that. Default 1000.
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
 *   a reconnection got an HTTP error other than `502`, `503` or `504` (that
 *   error: no further attempt), or when the call's signal is aborted
 *   (`CANCELLED`, 1, also at once during a reconnection's wait);
 * - `break`, `return` or a throw in the loop body closes the request, so the
 *   bridge cancels the upstream call.
 *
 * A stream that is never iterated keeps its connection open until
 * {@link GravityStream.close} or the signal.
 */
export interface GravityStream<T> extends AsyncIterable<T> {
  /** The last event id seen (what a reconnection sends as `Last-Event-ID`). */
  readonly lastEventId: string;
  /**
   * How many reconnections this stream has made so far (the first request's
   * retries after a `502`, `503` or `504` included).
   */
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
          stream(transport, options, method, request ?? {}, callOptions ?? {});
      } else if (method.methodKind === "unary") {
        client[method.localName] = (request?: object, callOptions?: CallOptions) =>
          transport.unary(method, request ?? {}, callOptions ?? {});
      }
    }
    api[key] = client;
  }
  return api as Api<Services>;
}

/**
 * A server-streaming call: the transport prepares the request, the
 * reconnecting stream sends it (and again on a cut) under the call's options.
 * Async, so that a request that cannot be encoded rejects the promise, as
 * it always did, rather than throwing from the call.
 */
async function stream(
  transport: Transport,
  options: ClientOptions,
  method: DescMethod,
  request: object,
  callOptions: StreamOptions,
): Promise<Result<GravityStream<unknown>>> {
  const prepared = transport.streamRequest(method, request, callOptions);
  if ("error" in prepared) return { error: prepared.error };
  return openReconnectingStream({
    method,
    control: prepared.control,
    open: prepared.open,
    lastEventId: callOptions.lastEventId ?? "",
    maxReconnects: callOptions.maxReconnects ?? options.maxReconnects ?? RECONNECT_DEFAULTS.maxReconnects,
    retryDelayMs: options.retryDelayMs ?? RECONNECT_DEFAULTS.retryDelayMs,
    maxRetryDelayMs: options.maxRetryDelayMs ?? RECONNECT_DEFAULTS.maxRetryDelayMs,
    onReconnect: callOptions.onReconnect ?? options.onReconnect,
  });
}
