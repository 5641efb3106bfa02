// Runs the graphql-http package's server audits against a Halo server:
//   node audit.mjs <graphql URL> <bearer token>
// and prints their results as JSON: [{id, name, status, reason}].
// Every request carries the token (Halo answers nothing without one).
import { serverAudits } from 'graphql-http';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node audit.mjs <graphql URL> <bearer token>');
  process.exit(2);
}
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('authorization', 'Bearer ' + token);
  return fetch(input, { ...init, headers });
};
const results = [];
for (const audit of serverAudits({ url, fetchFn })) {
  const r = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: r.status, reason: r.reason ?? '' });
}
console.log(JSON.stringify(results));
