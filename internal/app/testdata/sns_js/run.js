// Runs the document's handler (a pingback for one task) and its consumer,
// configured by the environment only (AWS_ENDPOINT_URL, credentials,
// SNS_TOPIC_ARN, SQS_QUEUE_URL), and prints what the consumer got.
const { handler } = require("./handler.js");
const { getSolvedCaptcha } = require("./consumer.js");
(async () => {
  const res = await handler({ queryStringParameters: { id: "task-js-1", code: "03AGdBq2-js" } });
  if (res.statusCode !== 200) throw new Error("handler: " + JSON.stringify(res));
  const bad = await handler({ queryStringParameters: {} });
  if (bad.statusCode !== 400) throw new Error("handler without id: " + JSON.stringify(bad));
  const result = await getSolvedCaptcha(10);
  console.log(JSON.stringify(result));
})().catch((err) => { console.error(err); process.exit(1); });
