/**
 * The reconnecting stream: a server stream's messages, resumed across cuts.
 *
 * {@link openReconnectingStream} sends a stream call's first request and
 * gives `{ data }` (a {@link GravityStream}) once a `200` event stream has
 * arrived. Iterating it reads the events with {@link SseParser}, yields each
 * message, ends on the bridge's `end` event, and when the stream is cut
 * without `end` sends the request again with `Last-Event-ID`, after a backoff
 * ({@link backoffDelay}), up to `maxReconnects` attempts in a row without a
 * message.
 *
 * Which failures are tried again (`Opened.retry` from the transport):
 * - a cut (the body ends or fails without `end`, the bridge's `retry:` cut
 *   included): on a reconnection;
 * - `fetch` failing (`"network"`): on a reconnection, not on the first
 *   request (there it is more often a wrong URL or a CORS refusal than a
 *   passing outage, and the caller should hear of it at once);
 * - `502`, `503`, `504` (`"status"`): on the first request and on a
 *   reconnection alike, waiting at least their `Retry-After`;
 * - anything else is final.
 *
 * @internal
 * @module
 */
import type { DescMessage, DescMethod, MessageShape } from "@bufbuild/protobuf";
import { Code, GravityError } from "./errors.js";
import type { GravityStream, ReconnectInfo, Result } from "./index.js";
import { SseParser } from "./sse_parser.js";
import { type CallControl, type Opened, cancelled, parseMessage, unavailable } from "./transport.js";

/** The defaults of the reconnection options of {@link ClientOptions}. */
export const RECONNECT_DEFAULTS = {
  maxReconnects: 10,
  retryDelayMs: 1000,
  maxRetryDelayMs: 30000,
};

/** The delay before reconnection attempt `attempt` (1-based). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  return reconnectDelay(attempt, baseMs, capMs, 0, random);
}

/**
 * {@link backoffDelay} that is never below `floorMs` (a `Retry-After`) before
 * its jitter: `max(min(max(cap, base), base × 2^(n−1)), floor) × (1 + 0.5 ×
 * random)`. The jitter spreads the clients that one `Retry-After` would
 * otherwise send back all in the same instant.
 */
export function reconnectDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  floorMs: number,
  random = Math.random,
): number {
  const ceiling = Math.max(capMs, baseMs);
  const exp = Math.min(ceiling, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(Math.max(exp, floorMs) * (1 + 0.5 * random()));
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

/** What a stream call needs, settings resolved. */
export interface StreamSpec<O extends DescMessage> {
  method: DescMethod & { output: O };
  control: CallControl;
  /** Sends the request (again) with this `Last-Event-ID` (`""`: none). */
  open: (lastEventId: string) => Promise<Opened>;
  lastEventId: string;
  maxReconnects: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  onReconnect: ((info: ReconnectInfo) => void) | undefined;
}

/**
 * Sends a stream call's first request, and again after a `502`, `503` or
 * `504` (within `maxReconnects`, honouring `Retry-After`). `{ data }` once a
 * `200` event stream arrived; else `{ error }`: the last response's error,
 * `CANCELLED` on abort, `UNAVAILABLE` when the bridge cannot be reached.
 */
export async function openReconnectingStream<O extends DescMessage>(
  spec: StreamSpec<O>,
): Promise<Result<GravityStream<MessageShape<O>>>> {
  const stream = new ReconnectingStream(spec);
  const error = await stream.connect();
  if (error !== undefined) {
    spec.control.release();
    return { error };
  }
  return { data: stream };
}

class ReconnectingStream<O extends DescMessage> implements GravityStream<MessageShape<O>> {
  private iterated = false;
  /** The bridge's last `retry:`, the backoff's base when set. */
  private retryMs: number | undefined;
  /** Attempts in a row without a message. */
  private failures = 0;
  private first: Response | undefined;
  private readonly name: string;
  lastEventId: string;
  reconnects = 0;

  constructor(private readonly spec: StreamSpec<O>) {
    this.lastEventId = spec.lastEventId;
    this.name = `${spec.method.parent.typeName}/${spec.method.name}`;
  }

  close(): void {
    this.spec.control.close();
  }

  /** The first request (and its retries): `undefined` once a stream is open, else the error. */
  async connect(): Promise<GravityError | undefined> {
    for (;;) {
      const opened = await this.spec.open(this.lastEventId);
      if (!("error" in opened)) {
        this.first = opened.response;
        return undefined;
      }
      if (opened.retry !== "status") return opened.error;
      try {
        if (!(await this.wait(opened.error, opened.retryAfterMs))) return opened.error;
      } catch (e) {
        return e as GravityError;
      }
    }
  }

  /**
   * Counts an attempt, tells `onReconnect` and sleeps its delay. `false` when
   * `maxReconnects` attempts were made (or the stream was closed meanwhile);
   * throws `CANCELLED` when the call's signal is aborted.
   */
  private async wait(cause: GravityError, retryAfterMs: number | undefined): Promise<boolean> {
    const { control } = this.spec;
    if (control.closed) return false;
    if (control.userAborted) throw cancelled(control.userSignal);
    if (++this.failures > this.spec.maxReconnects) return false;
    const delayMs = reconnectDelay(
      this.failures,
      this.retryMs ?? this.spec.retryDelayMs,
      this.spec.maxRetryDelayMs,
      retryAfterMs ?? 0,
    );
    this.reconnects++;
    this.spec.onReconnect?.({
      method: this.name,
      attempt: this.failures,
      delayMs,
      lastEventId: this.lastEventId,
      error: cause,
    });
    try {
      await sleep(delayMs, control.signal);
    } catch {
      if (control.closed) return false;
      throw cancelled(control.userSignal);
    }
    return true;
  }

  [Symbol.asyncIterator](): AsyncIterator<MessageShape<O>> {
    if (this.iterated) throw new TypeError("@gravity/client: a stream can be iterated once");
    this.iterated = true;
    const generator = this.messages();
    const control = this.spec.control;
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
    const { control, method } = this.spec;
    const name = this.name;
    let response: Response | undefined = this.first;
    this.first = undefined;
    let cut: GravityError = unavailable(`${name}: the stream was cut`);
    let retryAfterMs: number | undefined;
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
                  this.failures = 0;
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
        if (!(await this.wait(cut, retryAfterMs))) {
          if (control.closed) return;
          throw unavailable(
            `${cut.message}; not resumed after ${this.spec.maxReconnects} reconnection attempt(s)`,
            cut,
          );
        }
        const opened = await this.spec.open(this.lastEventId);
        if ("error" in opened) {
          if (control.closed) return;
          if (opened.retry === "no") throw opened.error;
          cut = opened.error;
          retryAfterMs = opened.retry === "status" ? opened.retryAfterMs : undefined;
          response = undefined;
        } else {
          retryAfterMs = undefined;
          response = opened.response;
        }
      }
    } finally {
      control.release();
    }
  }
}
