/** Every MQTT topic the daemon uses is built here, so the contract lives in one place. */

const BAD_LEVEL = /[+#/\u0000]/;

function level(kind: string, value: string): string {
  if (value.length === 0) throw new Error(`${kind} must not be empty`);
  if (BAD_LEVEL.test(value)) throw new Error(`${kind} "${value}" must not contain "+", "#", "/" or NUL: it would change the topic`);
  return value;
}

export class Topics {
  readonly base: string;

  constructor(topicPrefix: string, deviceId: string) {
    if (topicPrefix.length === 0 || /[+#\u0000]/.test(topicPrefix) || topicPrefix.split("/").some((l) => l === "")) {
      throw new Error(`topic_prefix "${topicPrefix}" must be non-empty levels without "+" or "#"`);
    }
    this.base = `${topicPrefix}/${level("device_id", deviceId)}`;
  }

  status(): string {
    return `${this.base}/status`;
  }

  health(): string {
    return `${this.base}/health`;
  }

  detections(cameraId: string): string {
    return `${this.base}/cameras/${level("camera id", cameraId)}/detections`;
  }

  counts(cameraId: string): string {
    return `${this.base}/cameras/${level("camera id", cameraId)}/counts`;
  }

  readings(meterId: string): string {
    return `${this.base}/meters/${level("meter id", meterId)}/readings`;
  }

  forecast(seriesId: string): string {
    return `${this.base}/forecasts/${level("series id", seriesId)}`;
  }

  command(name: string): string {
    return `${this.base}/cmd/${level("command name", name)}`;
  }

  /** The filter the daemon subscribes to for commands. */
  commandFilter(): string {
    return `${this.base}/cmd/+`;
  }

  commandResponse(name: string): string {
    return `${this.command(name)}/response`;
  }
}

/** Publishing refuses wildcard characters in a topic: a topic with them is a bug, not data. */
export function assertPublishable(topic: string): void {
  if (/[+#\u0000]/.test(topic) || topic.length === 0) throw new Error(`refusing to publish to topic "${topic}": wildcards or empty`);
}
