import { z } from "zod";
import type { MessageSink } from "../mqtt/sink.js";
import type { Topics } from "../mqtt/topics.js";
import { ENVELOPE_FIELDS } from "./fields.js";

/** A message body: a strict object, or a union of strict objects told apart by one field. */
export type BodySchema = z.ZodObject | z.ZodDiscriminatedUnion<z.ZodObject[]>;

/**
 * One message the daemon publishes: its body schema, version, topic and delivery. The JSON
 * Schema file and the AsyncAPI channel are generated from it (`cityedge contract --write`).
 */
export interface MessageSpec<Name extends string = string, B extends BodySchema = BodySchema> {
  /** The schema file's base name (`schemas/<name>.schema.json`) and the event's name on the bus. */
  readonly name: Name;
  /** The AsyncAPI channel and message id. */
  readonly channel: string;
  /** The AsyncAPI send operation's id. */
  readonly operation: string;
  readonly title: string;
  /** What a subscriber needs to know about the payload (the schema's description). */
  readonly description: string;
  /** What the channel carries, in one line (the channel's description). */
  readonly summary: string;
  /** The payload schema version: the envelope's `v`. */
  readonly v: number;
  /** The topic with `{topic_prefix}`, `{device_id}` and the id levels as AsyncAPI parameters. */
  readonly address: string;
  readonly retain: boolean;
  /** The body, without the envelope. */
  readonly body: B;
  /** Envelope and body: what a subscriber receives. */
  readonly schema: z.ZodType;
  /** The topic a body goes to (the id levels come from the body). */
  topic(topics: Topics, body: z.output<B>): string;
  /**
   * Urgent messages (health, command answers) go straight to the broker while the outbox cannot
   * commit (a full disk), instead of waiting in memory.
   */
  readonly urgent: boolean;
  /**
   * Hands a body to the outbox, on its topic with its version, retain flag and urgency; `seqKey`
   * puts its seq on another numbering than its topic's (answers to unknown commands share one).
   */
  publish(sink: MessageSink, topics: Topics, body: z.output<B>, opts?: { seqKey?: string }): void;
}

export type BodyOf<M extends MessageSpec> = M extends MessageSpec<string, infer B> ? z.output<B> : never;

const withEnvelope = (v: number, o: z.ZodObject): z.ZodObject =>
  z.strictObject({ ...ENVELOPE_FIELDS, v: z.literal(v).describe("Payload schema version"), ...o.shape });

/** The full message schema of a body: the envelope's fields first, `v` fixed to the version. */
function messageSchema(v: number, body: BodySchema): z.ZodType {
  if (body instanceof z.ZodObject) return withEnvelope(v, body);
  const options = body.options.map((o) => withEnvelope(v, o));
  return z.discriminatedUnion(body.def.discriminator, options as [z.ZodObject, ...z.ZodObject[]]);
}

export interface MessageDef<Name extends string, B extends BodySchema> {
  name: Name;
  channel: string;
  operation: string;
  title: string;
  description: string;
  summary: string;
  v: number;
  address: string;
  retain?: boolean;
  urgent?: boolean;
  body: B;
  topic: (topics: Topics, body: z.output<B>) => string;
  /** The numbering a body's seq belongs to when it is not its topic's. */
  seqKey?: (topics: Topics, body: z.output<B>) => string | undefined;
}

export function defineMessage<Name extends string, B extends BodySchema>(def: MessageDef<Name, B>): MessageSpec<Name, B> {
  const retain = def.retain ?? false;
  const urgent = def.urgent ?? false;
  return {
    ...def,
    retain,
    urgent,
    schema: messageSchema(def.v, def.body),
    publish(sink, topics, body, opts) {
      const seqKey = opts?.seqKey ?? def.seqKey?.(topics, body);
      sink.publish(def.topic(topics, body), body, {
        v: def.v,
        retain,
        ...(urgent ? { urgent } : {}),
        ...(seqKey !== undefined ? { seqKey } : {}),
      });
    },
  };
}
