// An incremental parser for text/event-stream, written from the WHATWG HTML
// standard, "9.2.6 Interpreting an event stream"
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
//
// Bytes (or already decoded text) go in as they arrive, in chunks of any size
// and split anywhere; complete events come out. What the standard asks for:
// - UTF-8 decoding; one leading U+FEFF (BOM) is dropped;
// - lines end with CRLF, LF or CR, and a CRLF may be split across chunks;
// - a line starting with ":" is a comment (the bridge's keep-alives);
// - "field: value" (one space after the colon dropped), "field" alone means
//   an empty value; unknown fields are ignored;
// - `data` lines accumulate joined with LF; an empty line dispatches; an
//   event with no `data` line is not dispatched;
// - `event` sets the type of the event being built ("message" by default);
// - `id` sets the last event id, unless its value contains U+0000 (ignored);
//   the id persists across events until set again;
// - `retry` sets the reconnection time only when the value is ASCII digits;
// - at the end of the stream an event without its empty line is dropped.

/** One dispatched event. */
export interface SseEvent {
  /** The `event:` field, or `"message"` when the event had none. */
  readonly type: string;
  /** The `data:` lines joined with `"\n"`. */
  readonly data: string;
  /** The last event id when the event was dispatched (`""` if none yet). */
  readonly lastEventId: string;
}

export interface SseParserOptions {
  /** The last event id to start from (a reconnecting client's). */
  lastEventId?: string;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Incremental WHATWG event-stream parser. Feed it with {@link push} as
 * chunks arrive and call {@link end} when the stream ends.
 */
export class SseParser {
  /** The last event id, as of the last dispatch (a blank line). */
  lastEventId: string;
  /** The last valid `retry:` value in milliseconds, if any was seen. */
  retry: number | undefined;

  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private line = "";
  private afterCR = false;
  private atStart = true;
  private data = "";
  private hasData = false;
  private eventType = "";
  private idBuffer: string;
  private ended = false;

  constructor(options: SseParserOptions = {}) {
    this.lastEventId = options.lastEventId ?? "";
    this.idBuffer = this.lastEventId;
  }

  /**
   * Parses one chunk (bytes, decoded as UTF-8 with state kept across chunks,
   * or a string) and returns the events it completed, in order.
   */
  push(chunk: Uint8Array | string): SseEvent[] {
    if (this.ended) throw new Error("SseParser: push() after end()");
    const text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    const events: SseEvent[] = [];
    this.scan(text, events);
    return events;
  }

  /**
   * The stream ended: whatever was not terminated by an empty line is
   * discarded, as the standard requires. Returns no events (an array for
   * symmetry with {@link push}).
   */
  end(): SseEvent[] {
    if (!this.ended) {
      this.ended = true;
      this.decoder.decode();
      this.line = "";
      this.data = "";
      this.hasData = false;
      this.eventType = "";
    }
    return [];
  }

  private scan(text: string, events: SseEvent[]): void {
    let i = 0;
    if (this.atStart && text.length > 0) {
      this.atStart = false;
      if (text.charCodeAt(0) === 0xfeff) i = 1;
    }
    let start = i;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== LF && c !== CR) {
        this.afterCR = false;
        continue;
      }
      if (c === LF && this.afterCR) {
        // The LF of a CRLF whose CR ended the line already (maybe in an
        // earlier chunk).
        this.afterCR = false;
        start = i + 1;
        continue;
      }
      this.afterCR = c === CR;
      const line = this.line + text.slice(start, i);
      this.line = "";
      start = i + 1;
      this.processLine(line, events);
    }
    this.line += text.slice(start);
  }

  private processLine(line: string, events: SseEvent[]): void {
    if (line === "") {
      this.dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 0x3a /* : */) return; // comment
    const colon = line.indexOf(":");
    let field: string;
    let value: string;
    if (colon === -1) {
      field = line;
      value = "";
    } else {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data += value + "\n";
        this.hasData = true;
        break;
      case "id":
        if (!value.includes("\u0000")) this.idBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.retry = Number.parseInt(value, 10);
        break;
      default:
        break; // ignored
    }
  }

  private dispatch(events: SseEvent[]): void {
    this.lastEventId = this.idBuffer;
    if (!this.hasData) {
      this.data = "";
      this.eventType = "";
      return;
    }
    const data = this.data.slice(0, -1); // the last LF
    events.push({ type: this.eventType === "" ? "message" : this.eventType, data, lastEventId: this.lastEventId });
    this.data = "";
    this.hasData = false;
    this.eventType = "";
  }
}
