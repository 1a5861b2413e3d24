/** The sinks, by `INFLUX_API`: one entry per InfluxDB write API. */
import type { SinkSettings } from '../config.js';
import type { Sink } from '../sink.js';
import { createInfluxV1Sink } from './influx-v1.js';
import { createInfluxV2Sink } from './influx-v2.js';

type SinkFactories = { readonly [Api in SinkSettings['api']]: (settings: Extract<SinkSettings, { readonly api: Api }>) => Sink };

const SINKS: SinkFactories = {
  '1': createInfluxV1Sink,
  '2': createInfluxV2Sink,
};

export function createSink(settings: SinkSettings): Sink {
  return (SINKS[settings.api] as (s: SinkSettings) => Sink)(settings);
}
