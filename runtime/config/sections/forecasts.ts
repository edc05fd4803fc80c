import { z } from "zod";
import { id } from "./common.js";

export const FORECAST_SCHEMA = z.strictObject({
  id: id("forecast series id"),
  source: z.string().min(1).describe('What to forecast: "meter:<meter_id>:<value>" or "camera:<camera_id>:counts"'),
  model: z.string().min(1).describe("Id of the forecasting model (in `models`)"),
});

export const FORECASTS_SCHEMA = z.array(FORECAST_SCHEMA).default([]).describe("Series the LSTM forecaster predicts");
