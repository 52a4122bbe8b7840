// A small client of Carrier written against the types openapi-typescript
// generates from GET /v1/openapi.json (schema.d.ts, made by the test). It is
// only type-checked (tsc --noEmit --strict): it fails when the document stops
// describing these operations as Carrier answers them.
import type { components, paths } from "./schema";

type JSONBody<Op> = Op extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
type Answer<Op, Status extends number> =
  Op extends { responses: { [S in Status]: { content: { "application/json": infer A } } } } ? A : never;
type Failure = components["schemas"]["Error"];

const base = "http://127.0.0.1:8080";

async function call<A>(method: string, path: string, key: string, body?: unknown): Promise<A | Failure> {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as A | Failure;
}

// Create a webhook.
type CreateWebhook = paths["/v1/webhooks"]["post"];
export async function createWebhook(key: string): Promise<{ id: string; secret: string }> {
  const body: JSONBody<CreateWebhook> = {
    name: "orders",
    webhook_url: "https://example.com/hooks/orders",
    event_types: ["scrape.*"],
    timeout_seconds: 10,
    max_retries: 3,
    custom_headers: { "X-Env": "test" },
    ordering: "fifo",
  };
  const a = await call<Answer<CreateWebhook, 201>>("POST", "/v1/webhooks", key, body);
  if (!a.success) {
    const code: components["schemas"]["ErrorCode"] = a.error.code;
    throw new Error(code + (a.error.field ? " (" + a.error.field + ")" : "") + ": " + a.error.message);
  }
  return { id: a.data.webhook_id, secret: a.data.secret };
}

// List a webhook's failed deliveries.
type ListDeliveries = paths["/v1/webhooks/{id}/deliveries"]["get"];
export async function failedDeliveries(key: string, id: ListDeliveries["parameters"]["path"]["id"]): Promise<string[]> {
  const query: NonNullable<ListDeliveries["parameters"]["query"]> = { status: "failed", limit: 50, from: "2026-01-27" };
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  const a = await call<Answer<ListDeliveries, 200>>("GET", `/v1/webhooks/${id}/deliveries?${qs}`, key);
  if (!a.success) throw new Error(a.error.message);
  const filtered: string | null = a.data.length > 0 ? a.meta.filters.status : null;
  return a.data.map((d) => {
    const status: "pending" | "retrying" | "delivered" | "failed" = d.status;
    const httpStatus: number | null = d.response_status;
    const deliveredAt: string | null = d.delivered_at;
    return `${d.uuid} ${d.eventType} ${status} ${httpStatus ?? "-"} ${deliveredAt ?? ""} ${d.error_code ?? ""} ${filtered}`;
  });
}

// Publish an event.
type Publish = paths["/v1/events"]["post"];
export async function publish(key: string): Promise<string> {
  const body: JSONBody<Publish> = {
    type: "scrape.completed",
    subject: "job-1",
    data: { job: 1, pages: [1, 2] },
    attributes: { region: "eu", price: 5, retried: false },
    idempotency_key: "job-1-done",
  };
  const a = await call<Answer<Publish, 202> | Answer<Publish, 200>>("POST", "/v1/events", key, body);
  if (!a.success) throw new Error(a.error.message);
  const deliveries: number | null = a.data.deliveries;
  return a.data.duplicate ? a.data.event_id : `${a.data.event_id} (${deliveries ?? "spooled"})`;
}

// A delivery with its attempts, and a task, read through components.
export function describe(d: Answer<paths["/v1/webhooks/{id}/deliveries/{deliveryId}"]["get"], 200>, t: components["schemas"]["Task"]): string {
  const last = d.data.attempts[d.data.attempts.length - 1];
  const ms: number = last ? last.response_duration_ms : 0;
  return `${d.data.delivery.uuid} ${ms} ${t.status} ${t.submitted_at ?? "not submitted"}`;
}

// What the document must refuse.
export const refused = [
  // @ts-expect-error timeout_seconds is a number
  ((): JSONBody<CreateWebhook> => ({ timeout_seconds: "10" }))(),
  // @ts-expect-error unknown fields are refused
  ((): JSONBody<CreateWebhook> => ({ webhook_uri: "https://example.com" }))(),
  // @ts-expect-error an event needs a type
  ((): JSONBody<Publish> => ({ data: {} }))(),
  // @ts-expect-error status is one of the delivery states
  ((): NonNullable<ListDeliveries["parameters"]["query"]> => ({ status: "lost" }))(),
  // @ts-expect-error no such error code
  ((): components["schemas"]["ErrorCode"] => "teapot")(),
];
