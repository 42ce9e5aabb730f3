// Compiled with `tsc --noEmit -p test/types` (by test/types.test.mjs): the
// API is typed from the generated descriptors. Every @ts-expect-error must
// be an error, and everything else must compile.
import { createApi, GravityError, type GravityStream } from "@gravity/client";
import {
  Streaming,
  type PingReply,
  type PingRequestSchema,
  type User,
  type UserSchema,
} from "@gravity/client/dist/gen/streaming/v1/streaming_pb.js";
import type { GenService } from "@bufbuild/protobuf/codegenv2";

// A service with a unary and a client-streaming method, declared here so the
// test does not depend on which methods the example proto has.
declare const Mixed: GenService<{
  lookUp: { methodKind: "unary"; input: typeof PingRequestSchema; output: typeof UserSchema };
  upload: { methodKind: "client_streaming"; input: typeof PingRequestSchema; output: typeof UserSchema };
}>;

declare const signal: AbortSignal;

export async function typed(): Promise<void> {
  const api = createApi({ baseUrl: "http://127.0.0.1:8080", token: "t", credentials: "include" }, { streaming: Streaming });

  const { data, error } = await api.streaming.ping({ to: "Gravity", count: 3 }, { signal, lastEventId: "2" });
  if (error) {
    const code: number = error.code;
    const e: GravityError = error;
    void code;
    void e;
    return;
  }
  const stream: GravityStream<PingReply> = data;
  for await (const message of data) {
    const seq: bigint = message.seq;
    const text: string = message.message;
    void seq;
    void text;
  }
  void stream;

  const users = await api.streaming.streamUsers({ count: 2 });
  if (users.data) {
    for await (const user of users.data) {
      const u: User = user;
      void u;
    }
  }
  await api.streaming.ping();

  const mixed = createApi({ baseUrl: "" }, { mixed: Mixed });
  const reply = await mixed.mixed.lookUp({ to: "x" }, { signal });
  if (!reply.error) {
    const u: User = reply.data;
    void u;
  }
  // @ts-expect-error client-streaming methods are not served by the bridge
  await mixed.mixed.upload();
  // @ts-expect-error a unary reply is a message, not a stream
  if (!reply.error) for await (const x of reply.data) void x;

  // Unary: the example's Echo resolves to { data: EchoReply } or { error }.
  const echoed = await api.streaming.echo({ text: "hi", failCode: 0 }, { signal });
  if (echoed.error) {
    const code: number = echoed.error.code;
    void code;
  } else {
    const text: string = echoed.data.text;
    void text;
  }
  // @ts-expect-error `text` is a string
  await api.streaming.echo({ text: 1 });
  // @ts-expect-error a unary call takes no stream options
  await api.streaming.echo({}, { lastEventId: "1" });

  // @ts-expect-error `to` is a string
  await api.streaming.ping({ to: 1 });
  // @ts-expect-error no such method
  await api.streaming.nope();
  // @ts-expect-error no such field
  await api.streaming.ping({ too: "x" });
  // @ts-expect-error seq is a bigint, not a string
  for await (const m of data) { const s: string = m.seq; void s; }
  // @ts-expect-error data may be undefined until error is checked
  await api.streaming.streamUsers().then((r) => r.data[Symbol.asyncIterator]());
}
