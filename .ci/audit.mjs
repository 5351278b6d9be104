// RELIABILITY.md A13: no high or critical advisory in what the app ships (npm audit --omit=dev).
// Reads `npm audit --omit=dev --json` on stdin. Fails on a high or critical advisory; when the
// registry's advisory service cannot be reached (some mirrors answer 405), says so and passes:
// the version floors in test/relay/deps-floor.test.ts are checked by `npm test` either way.
let text = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) text += chunk;

let report;
try {
  report = JSON.parse(text);
} catch {
  console.error(`npm audit: unreadable output:\n${text.slice(0, 500)}`);
  process.exit(1);
}
const counts = report?.metadata?.vulnerabilities;
if (!counts) {
  console.log(`npm audit: advisory service unavailable (${report?.statusCode ?? report?.error?.summary ?? 'no report'}); relying on the version floors of test/relay/deps-floor.test.ts`);
  process.exit(0);
}
const serious = (counts.high ?? 0) + (counts.critical ?? 0);
const names = Object.values(report.vulnerabilities ?? {})
  .filter((v) => v.severity === 'high' || v.severity === 'critical')
  .map((v) => `${v.name} (${v.severity})`);
console.log(`npm audit --omit=dev: ${counts.critical ?? 0} critical, ${counts.high ?? 0} high, ${counts.moderate ?? 0} moderate, ${counts.low ?? 0} low`);
if (serious > 0) {
  console.error(`npm audit: high or critical advisories in shipped dependencies: ${names.join(', ')}`);
  process.exit(1);
}
