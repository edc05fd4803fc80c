import { z } from "zod";
import { COMMAND_NAMES } from "../../config/sections/commands.js";
import { defineMessage } from "../message.js";

export const COMMAND_ERROR_CODES = [
  "malformed",
  "unknown_command",
  "not_allowed",
  "busy",
  "rate_limited",
  "rejected",
  "not_found",
  "failed",
] as const;
export type CommandErrorCode = (typeof COMMAND_ERROR_CODES)[number];

const COMMON = {
  request_id: z.string().nullable().describe("The command's id; null when the payload had no usable id"),
  command: z.string().describe("The <name> level of the command topic"),
};

export const COMMAND_RESPONSE = defineMessage({
  name: "cmd-response",
  channel: "commandResponse",
  operation: "answerCommand",
  title: "Command response",
  description:
    "The answer to a command, on <base>/cmd/<name>/response: ok with a result, or an error. Every command gets exactly one answer, a malformed or unknown one included, except past its rate limit, where one refusal in 10 s is answered. The answers to names the device does not know all share one seq numbering (the names create no state on the device): audit those by id.",
  summary: "The answer to a command.",
  v: 1,
  address: "{topic_prefix}/{device_id}/cmd/{name}/response",
  urgent: true,
  body: z.discriminatedUnion("ok", [
    z.strictObject({
      ...COMMON,
      ok: z.literal(true),
      result: z
        .record(z.string(), z.unknown())
        .describe(
          "What the command did (e.g. update_model: model, sha256, bytes, provider, previous_sha256; snapshot: camera, frame_index, captured_at, width, height, resolution (camera or model), with boxes also boxes (objects drawn) and boxes_frame_index, content_type, jpeg_base64)",
        ),
    }),
    z.strictObject({
      ...COMMON,
      ok: z.literal(false),
      error: z.strictObject({
        code: z.enum(COMMAND_ERROR_CODES),
        message: z.string(),
        details: z.array(z.string()).optional().describe("Every problem, e.g. each config error as FILE:LINE:COL key: message"),
      }),
    }),
  ]),
  topic: (t, b) => t.commandResponse(b.command),
  // Names a sender makes up would each start a numbering kept for good: they share one instead.
  seqKey: (t, b) => ((COMMAND_NAMES as readonly string[]).includes(b.command) ? undefined : `${t.base}/cmd/(unknown)/response`),
});

export type CommandResponseBody = z.output<typeof COMMAND_RESPONSE.body>;
