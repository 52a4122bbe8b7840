// Runs two published 2captcha clients for Node.js, unmodified, against
// Carrier: only their endpoint changes (the in/res URLs, which they hard-code
// as https://2captcha.com/...). Both speak the JSON mode (json=1).
//
//   @2captcha/captcha-solver: reCAPTCHA with a pingback URL (GET in.php), then
//                             the balance
//   2captcha:                 an image captcha, whose base64 body it POSTs as
//                             JSON with Content-Type text/plain
//
// Environment: CARRIER_URL, CARRIER_KEY. Prints one JSON line with what the
// clients returned and the pingback this script's own server received.
"use strict";
const http = require("http");
const { Solver } = require("@2captcha/captcha-solver");
const Legacy = require("2captcha");

const base = process.env.CARRIER_URL;
const key = process.env.CARRIER_KEY;

function pointAt(solver) {
  Object.defineProperty(solver, "in", { get: () => base + "/in.php" });
  Object.defineProperty(solver, "res", { get: () => base + "/res.php" });
  return solver;
}

function receivePingbacks() {
  const got = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ method: req.method, url: req.url, type: req.headers["content-type"] || "", body });
      res.end("OK");
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, got })));
}

async function waitFor(cond, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function main() {
  const { server, got } = await receivePingbacks();
  const pingback = `http://127.0.0.1:${server.address().port}/pingback`;
  const out = {};

  const solver = pointAt(new Solver(key, 200));
  out.recaptcha = await solver.recaptcha({ pageurl: "https://example.com/login", googlekey: "6Le-js-client", pingback });
  await waitFor(() => got.length > 0, 20000);
  out.pingbacks = got;
  out.balance = await solver.balance();

  const legacy = pointAt(new Legacy.Solver(key, 200));
  out.image = await legacy.imageCaptcha(Buffer.alloc(300, 7).toString("base64"));

  server.close();
  process.stdout.write(JSON.stringify(out) + "\n");
}

const timer = setTimeout(() => {
  process.stderr.write("solve.js: gave up after 60 s\n");
  process.exit(2);
}, 60000);
main()
  .then(() => clearTimeout(timer))
  .catch((err) => {
    process.stderr.write("solve.js: " + (err && err.stack ? err.stack : err) + "\n");
    process.exit(1);
  });
