// Sends Segment calls with @segment/analytics-node to the server named on the command line.
// Usage: node segment_send.js HOST WRITE_KEY CALLS_JSON, CALLS_JSON = [{"type": "identify", ...}]
// (each call's other fields are the SDK method's parameters). Exits non-zero on any SDK error.
"use strict";
const { Analytics } = require("@segment/analytics-node");

const [host, writeKey, callsJson] = process.argv.slice(2);
const analytics = new Analytics({ writeKey, host, maxRetries: 2, flushInterval: 100 });
const errors = [];
analytics.on("error", (err) => errors.push(String(err && (err.reason || err.message || err))));

for (const call of JSON.parse(callsJson)) {
  const { type, ...params } = call;
  analytics[type](params);
}
analytics.closeAndFlush({ timeout: 20000 }).then(() => {
  if (errors.length) {
    console.error("SDK errors: " + errors.join("; "));
    process.exit(1);
  }
  console.log("flushed");
});
