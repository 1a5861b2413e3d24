/** The hostpulse contract: topics, names, the metric catalog and the payload codec. */
export * from './catalog.js';
export * from './names.js';
export * from './payload.js';
