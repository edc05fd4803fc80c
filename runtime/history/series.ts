/** Names of history series; forecasts name them as their `source`. */

/** A meter value's series: `meter:<meter_id>:<value>`. */
export const meterSeries = (meterId: string, value: string): string => `meter:${meterId}:${value}`;

/** A camera's line crossings per counts interval: `camera:<camera_id>:counts`. */
export const countsSeries = (cameraId: string): string => `camera:${cameraId}:counts`;
