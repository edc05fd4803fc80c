import { COMMAND, MESSAGES } from "./index.js";

const DESCRIPTION = `What one cityedge device publishes and listens to. Every topic lives under
\`<topic_prefix>/<device_id>\` (prefix default \`cityedge\`); ids never contain \`+\`, \`#\` or \`/\`.

**Envelope.** Every JSON message the daemon publishes carries, merged into its top level:
\`v\` (payload schema version), \`id\` (unique, a UUID), \`device_id\`, \`ts\` (ISO 8601 UTC with
milliseconds), \`epoch\` and \`seq\` (see \`schemas/envelope.schema.json\`).

**Versions.** Each schema describes exactly what this version of the daemon sends. A later
version may add optional fields without changing \`v\` (ignore fields you do not know); \`v\`
changes when a field is removed, renamed or changes meaning.

**Delivery.** All messages except \`status\` go through a durable SQLite outbox: a message is
committed to it before it is handed to MQTT and removed only after the broker's PUBACK (QoS 1).
Within one \`epoch\`, \`seq\` is per topic, rises by exactly 1 per message and continues across
restarts, so a subscriber can prove it missed nothing: a gap in \`seq\` is a loss. After a crash
or a broken connection, unacknowledged messages are sent again: a subscriber may see a \`seq\`
twice, always with the same \`id\` (deduplicate on \`id\`). Per topic, messages arrive in
\`seq\` order. A broker outage or a daemon crash loses nothing up to the outbox quota
(\`outbox.max_rows\`, \`outbox.max_bytes\`); past it the oldest messages are dropped, and the drop
is counted in \`<base>/health\` (\`outbox.dropped\`) and the \`cityedge_outbox_dropped_total\`
metric. On a full disk the outbox keeps at most \`outbox.max_memory_messages\` in memory and
drops the oldest; a dropped message still consumes its \`seq\`, so the loss is a gap exactly
where it happened. Health and command answers are sent past the outbox meanwhile (not stored:
a broken connection loses them, again as a gap).

**Epoch.** The per-topic high-water marks live in a sequence ledger beside the outbox, so a
damaged or deleted outbox file does not restart \`seq\`: it continues after the marks (the
messages that file held show as a gap). \`epoch\` changes only when the outbox and the ledger
are both lost: the numbering then starts over at 1 in the new epoch. Key an audit on
(epoch, seq): a new epoch is a new numbering, not a run of duplicates, and what the previous
epoch had not delivered may be lost. Answers to unknown command names all share one numbering
(they create no per-topic state on the device): audit those by \`id\`.

**Status and seq.** \`status\` is a state, not a stream: it is retained and published directly
(not queued in the outbox; after an outage only the current state matters). The daemon
numbers its MQTT connections k = 1, 2, … (persisted, rising across restarts). Connection k
publishes \`online\` with \`seq\` 2k-1 right after CONNACK, and registers the last will \`offline\`
with \`seq\` 2k (the will is fixed when the connection is made, which is why it takes a number
reserved in advance). A clean shutdown publishes \`stopped\` with \`seq\` 2k and disconnects
cleanly, so the will is not sent. \`connection\` in the payload is k; the will's \`ts\` is the time
its connection was made. A config reload (SIGHUP or the reload command) reconnects, so it
shows as \`stopped\` then \`online\` with the next k. So for status, a jump in
\`seq\` means a state that was never delivered (typically a will lost because the broker itself
restarted), not a lost data message.
`;

const PARAMETERS: Record<string, string> = {
  topic_prefix: "First level(s) of every topic (config `topic_prefix`, default `cityedge`).",
  device_id: "The device (config `device_id`).",
  camera_id: "A camera id from the config's `cameras`.",
  meter_id: "A meter id from the config's `meters`.",
  series_id: "A forecast id from the config's `forecasts`.",
  name: "A command name.",
};

const ref = (path: string) => ({ $ref: path });

function channel(address: string, description: string, message: string) {
  const params = [...address.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  for (const p of params) if (!(p in PARAMETERS)) throw new Error(`channel address "${address}": parameter "${p}" has no description`);
  return {
    address,
    description,
    parameters: Object.fromEntries(params.map((p) => [p, ref(`#/components/parameters/${p}`)])),
    messages: { [message]: ref(`#/components/messages/${message}`) },
  };
}

/** The AsyncAPI 3.0 document, built from the contract's messages. */
export function asyncApiDocument(): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const m of MESSAGES) {
    channels[m.channel] = channel(m.address, m.summary, m.channel);
    operations[m.operation] = { action: "send", channel: ref(`#/channels/${m.channel}`), bindings: { mqtt: { qos: 1, retain: m.retain } } };
    messages[m.channel] = { name: m.channel, title: m.title, payload: ref(`./schemas/${m.name}.schema.json`) };
  }
  const cmd = COMMAND;
  channels[cmd.channel] = channel(cmd.address, cmd.summary, cmd.channel);
  operations[cmd.operation] = { action: "receive", channel: ref(`#/channels/${cmd.channel}`), bindings: { mqtt: { qos: 1 } } };
  messages[cmd.channel] = { name: cmd.channel, title: cmd.title, payload: ref(`./schemas/${cmd.name}.schema.json`) };
  return {
    asyncapi: "3.0.0",
    info: { title: "cityedge device MQTT contract", version: "1.0.0", description: DESCRIPTION, license: { name: "Apache-2.0" } },
    defaultContentType: "application/json",
    servers: {
      embedded: {
        host: "127.0.0.1:1883",
        protocol: "mqtt",
        description: "The embedded broker (aedes) that `config/demo.yaml` turns on, for demos.",
      },
      city: {
        host: "{host}:{port}",
        protocol: "secure-mqtt",
        description: "The city's broker; TLS with a CA file, optionally mutual TLS (client certificate and key). MQTT 3.1.1 or 5.",
        variables: { host: { default: "broker.example.city" }, port: { default: "8883" } },
      },
    },
    channels,
    operations,
    components: {
      parameters: Object.fromEntries(Object.entries(PARAMETERS).map(([k, description]) => [k, { description }])),
      messages,
    },
  };
}
