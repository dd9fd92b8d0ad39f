// Small conversions shared by the ergonomic layer.
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "./errors.js";

/** A duration: milliseconds, or a Go-style string such as "90s", "10m", "1h30m". */
export type DurationLike = number | string;

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function toMillis(d: DurationLike): number {
  if (typeof d === "number") return d;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(d)) !== null) {
    total += parseFloat(m[1]) * units[m[2]];
    end = re.lastIndex;
  }
  if (end === 0 || end !== d.length) throw new InvalidArgumentError(`duration ${JSON.stringify(d)}: want e.g. 500ms, 30s, 10m, 1h`);
  return total;
}

export function toDuration(d: DurationLike): { seconds: bigint; nanos: number } {
  const ms = toMillis(d);
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: Math.round((ms % 1000) * 1e6) };
}

export function durationMillis(d?: Duration): number | undefined {
  return d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6) : undefined;
}

export function toDate(t?: Timestamp): Date | undefined {
  return t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)) : undefined;
}

/** Environment variables of the host, in Node; empty in browsers. */
export function hostEnv(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.[name] || undefined;
}

export const encoder = new TextEncoder();

/** Turns anything byte-like into a Uint8Array. */
export function toBytes(data: string | Uint8Array | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Bytes from any source a caller may hand us: strings, buffers, web streams, async iterables. */
export type ByteSource =
  | string
  | Uint8Array
  | ArrayBuffer
  | ArrayBufferView
  | Blob
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>;

export async function* chunks(src: ByteSource): AsyncGenerator<Uint8Array> {
  if (typeof src === "string" || src instanceof ArrayBuffer || ArrayBuffer.isView(src)) {
    yield toBytes(src);
    return;
  }
  if (typeof Blob !== "undefined" && src instanceof Blob) {
    yield new Uint8Array(await src.arrayBuffer());
    return;
  }
  if (isReadableStream(src)) {
    const reader = src.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield toBytes(value);
      }
    } finally {
      reader.releaseLock();
    }
  }
  for await (const c of src as AsyncIterable<Uint8Array | string>) yield toBytes(c);
}

export function isReadableStream(x: unknown): x is ReadableStream<Uint8Array> {
  return typeof x === "object" && x !== null && typeof (x as ReadableStream).getReader === "function";
}

/** A web ReadableStream from any byte source. */
export function toReadableStream(src: ByteSource): ReadableStream<Uint8Array> {
  if (isReadableStream(src)) return src;
  const it = chunks(src);
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      const { done, value } = await it.next();
      if (done) ctrl.close();
      else ctrl.enqueue(value);
    },
    async cancel() {
      await it.return(undefined);
    },
  });
}

/** Maps an env record to the wire's map; undefined values are dropped. */
export function envMap(env?: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env ?? {})) if (v !== undefined) out[k] = v;
  return out;
}

/** A signal that fires when any of the given ones does (AbortSignal.any is Node ≥ 20). */
export function linkSignals(...signals: (AbortSignal | undefined)[]): AbortController {
  const ctrl = new AbortController();
  for (const s of signals) {
    if (!s) continue;
    if (s.aborted) ctrl.abort(s.reason);
    else s.addEventListener("abort", () => ctrl.abort(s.reason), { once: true });
  }
  return ctrl;
}
