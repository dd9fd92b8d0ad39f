// Typed errors: every failure the daemon reports carries a stable wire code
// (DESIGN §3), and each code has its own class so callers can use instanceof.
import { Code, ConnectError } from "@connectrpc/connect";

/** The daemon's stable error codes. */
export type ErrorCode =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "resource_exhausted"
  | "permission_denied"
  | "unauthenticated"
  | "deadline_exceeded"
  | "unavailable"
  | "canceled"
  | "internal";

/** Every error of this SDK; code is the daemon's wire code. */
export class HutchError extends Error {
  readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode = "internal", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HutchError";
    this.code = code;
  }
}

export class InvalidArgumentError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "invalid_argument", options);
    this.name = "InvalidArgumentError";
  }
}
export class NotFoundError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "not_found", options);
    this.name = "NotFoundError";
  }
}
export class AlreadyExistsError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "already_exists", options);
    this.name = "AlreadyExistsError";
  }
}
export class FailedPreconditionError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "failed_precondition", options);
    this.name = "FailedPreconditionError";
  }
}
export class ResourceExhaustedError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "resource_exhausted", options);
    this.name = "ResourceExhaustedError";
  }
}
export class PermissionDeniedError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "permission_denied", options);
    this.name = "PermissionDeniedError";
  }
}
export class UnauthenticatedError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "unauthenticated", options);
    this.name = "UnauthenticatedError";
  }
}
export class DeadlineExceededError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "deadline_exceeded", options);
    this.name = "DeadlineExceededError";
  }
}
export class UnavailableError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "unavailable", options);
    this.name = "UnavailableError";
  }
}
/** The caller cancelled (an AbortSignal fired). */
export class CanceledError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "canceled", options);
    this.name = "CanceledError";
  }
}
export class InternalError extends HutchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "internal", options);
    this.name = "InternalError";
  }
}

type ErrorClass = new (message: string, options?: { cause?: unknown }) => HutchError;

const byCode: Record<ErrorCode, ErrorClass> = {
  invalid_argument: InvalidArgumentError,
  not_found: NotFoundError,
  already_exists: AlreadyExistsError,
  failed_precondition: FailedPreconditionError,
  resource_exhausted: ResourceExhaustedError,
  permission_denied: PermissionDeniedError,
  unauthenticated: UnauthenticatedError,
  deadline_exceeded: DeadlineExceededError,
  unavailable: UnavailableError,
  canceled: CanceledError,
  internal: InternalError,
};

const connectCodes: Partial<Record<Code, ErrorCode>> = {
  [Code.InvalidArgument]: "invalid_argument",
  [Code.OutOfRange]: "invalid_argument",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "failed_precondition",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.PermissionDenied]: "permission_denied",
  [Code.Unauthenticated]: "unauthenticated",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.Unavailable]: "unavailable",
  [Code.Canceled]: "canceled",
};

/** The error class for a wire code ("not_found", …). */
export function errorFor(code: string, message: string, cause?: unknown): HutchError {
  const cls = byCode[code as ErrorCode] ?? InternalError;
  return new cls(message, { cause });
}

/** Turns anything a call threw into a HutchError (already typed ones pass). */
export function toHutchError(err: unknown): HutchError {
  if (err instanceof HutchError) return err;
  if (err instanceof ConnectError) {
    if (err.code === Code.Unknown && err.cause instanceof TypeError) return toHutchError(err.cause);
    return errorFor(connectCodes[err.code] ?? "internal", err.rawMessage, err);
  }
  if (isAbort(err)) return new CanceledError("the call was cancelled", { cause: err });
  if (err instanceof TypeError) {
    // fetch reports network failures (refused, reset, DNS) as TypeError.
    return new UnavailableError(`cannot reach the hutch daemon: ${err.message}`, { cause: err });
  }
  return new InternalError(err instanceof Error ? err.message : String(err), { cause: err });
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError");
}

/** Reads a plain-HTTP error answer ({"code","message"}, or any text). */
export async function fromResponse(resp: Response): Promise<HutchError> {
  const text = await resp.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { code?: string; message?: string };
    if (body.code) return errorFor(body.code, body.message ?? resp.statusText);
  } catch {
    // not our body: the status decides
  }
  const msg = text.trim() && text.length <= 512 ? text.trim() : resp.statusText;
  return errorFor(statusCode(resp.status), `http ${resp.status}: ${msg}`);
}

function statusCode(status: number): ErrorCode {
  switch (status) {
    case 400:
    case 416:
      return "invalid_argument";
    case 401:
      return "unauthenticated";
    case 403:
      return "permission_denied";
    case 404:
      return "not_found";
    case 408:
    case 504:
      return "deadline_exceeded";
    case 409:
      return "already_exists";
    case 412:
      return "failed_precondition";
    case 429:
      return "resource_exhausted";
    case 502:
    case 503:
      return "unavailable";
    default:
      return "internal";
  }
}
