// A span exporter that accepts every batch and keeps nothing: the cost measured is producing spans, not
// shipping them. Shared by the stock-OTel baseline and pgsight's sampled run, so both pay the same.
export const discardExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => {},
  forceFlush: async () => {},
};
