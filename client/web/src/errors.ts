/**
 * gRPC status codes (google.rpc.Code), by name.
 */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A gRPC status code number (0..16). */
export type CodeNumber = (typeof Code)[keyof typeof Code];

const CODE_NAMES: readonly string[] = Object.keys(Code);

/** The rich error details of a status, each as the proto3 JSON of an `Any` (`{"@type": ..., ...}`). */
export type StatusDetail = { "@type"?: string; [key: string]: unknown };

/**
 * The error of a gravity call: a google.rpc.Status.
 *
 * It comes from the bridge's Status JSON (`{"code", "message", "details"}`)
 * of an HTTP error response or of a stream's `end` event, or from the client
 * itself: `UNAVAILABLE` (14) for a network failure or a stream that could not
 * be resumed, `CANCELLED` (1) for an aborted call, `INTERNAL` (13) for a
 * response that is not what the bridge sends.
 */
export class GravityError extends Error {
  /** The gRPC status code (`Code.UNAUTHENTICATED` = 16, ...). */
  readonly code: number;
  /** The status's details (proto3 JSON of `Any` messages), `[]` when none. */
  readonly details: readonly StatusDetail[];
  /** The HTTP status of the response that carried the error, if one did. */
  readonly httpStatus: number | undefined;

  constructor(
    code: number,
    message: string,
    details: readonly StatusDetail[] = [],
    options: { httpStatus?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GravityError";
    this.code = code;
    this.details = details;
    this.httpStatus = options.httpStatus;
  }

  /** The code's name, e.g. `"UNAUTHENTICATED"`. */
  get codeName(): string {
    return CODE_NAMES[this.code] ?? `CODE_${this.code}`;
  }

  override toString(): string {
    return `GravityError: [${this.codeName}] ${this.message}`;
  }

  /**
   * A GravityError from a google.rpc.Status JSON value; `fallbackCode` when
   * the value is not one.
   */
  static fromStatusJson(json: unknown, fallbackCode: number, httpStatus?: number): GravityError {
    if (json !== null && typeof json === "object" && !Array.isArray(json)) {
      const status = json as { code?: unknown; message?: unknown; details?: unknown };
      const code = typeof status.code === "number" && Number.isInteger(status.code) ? status.code : fallbackCode;
      const message = typeof status.message === "string" ? status.message : "";
      const details = Array.isArray(status.details)
        ? (status.details.filter((d) => d !== null && typeof d === "object") as StatusDetail[])
        : [];
      return new GravityError(code, message, details, httpStatus === undefined ? {} : { httpStatus });
    }
    return new GravityError(
      fallbackCode,
      httpStatus === undefined ? "malformed status" : `HTTP ${httpStatus}`,
      [],
      httpStatus === undefined ? {} : { httpStatus },
    );
  }
}

/**
 * The gRPC code for an HTTP status without a Status JSON body (a proxy's
 * error page, say), as gRPC's "HTTP to gRPC status code mapping" has it.
 */
export function codeFromHttpStatus(status: number): number {
  switch (status) {
    case 400:
      return Code.INTERNAL;
    case 401:
      return Code.UNAUTHENTICATED;
    case 403:
      return Code.PERMISSION_DENIED;
    case 404:
      return Code.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.UNAVAILABLE;
    default:
      return Code.UNKNOWN;
  }
}
