// JSON-RPC over HTTP with batching. The dashboard only reads, so every call is idempotent and a batch can be
// split freely. Failures are sorted into what the page shows: the chain is unreachable ("no-chain") or it
// answered with an error ("rpc").

export class RpcError extends Error {
  constructor(kind, message, { code, data } = {}) {
    super(message);
    this.kind = kind;
    this.code = code;
    this.data = data;
  }
}

const MAX_BATCH = 400;

export class Rpc {
  constructor(url, { timeoutMs = 30000 } = {}) {
    this.url = url;
    this.timeoutMs = timeoutMs;
    this.nextId = 1;
    this.requests = 0;
  }

  async send(method, params = []) {
    const [answer] = await this.post([{ jsonrpc: "2.0", id: this.nextId++, method, params }]);
    return unwrap(answer, method);
  }

  /** Many calls, one round trip per MAX_BATCH; results in order. Throws the first error. */
  async batch(calls) {
    const results = [];
    for (let i = 0; i < calls.length; i += MAX_BATCH) {
      const chunk = calls.slice(i, i + MAX_BATCH);
      const payload = chunk.map(([method, params]) => ({ jsonrpc: "2.0", id: this.nextId++, method, params }));
      const answers = await this.post(payload);
      const byId = new Map(answers.map((a) => [a.id, a]));
      payload.forEach((p) => results.push(unwrap(byId.get(p.id), p.method)));
    }
    return results;
  }

  async post(payload) {
    this.requests += 1;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let response;
    try {
      response = await fetch(this.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(payload.length === 1 ? payload[0] : payload),
        signal: controller.signal,
      });
    } catch (err) {
      throw new RpcError("no-chain", `no answer from ${this.url} (${err.name === "AbortError" ? "timed out" : "unreachable"})`);
    } finally {
      clearTimeout(timer);
    }
    let body;
    try {
      body = await response.json();
    } catch {
      throw new RpcError(response.ok ? "rpc" : "no-chain", `${this.url} answered HTTP ${response.status} without JSON`);
    }
    if (!response.ok && !(Array.isArray(body) || body?.jsonrpc)) {
      // the dashboard's proxy says why it could not reach the chain: {"error": "..."}
      throw new RpcError(response.status === 502 || response.status === 504 ? "no-chain" : "rpc", body?.error || `HTTP ${response.status}`);
    }
    return Array.isArray(body) ? body : [body];
  }
}

function unwrap(answer, method) {
  if (!answer) throw new RpcError("rpc", `${method}: no answer in the batch`);
  if (answer.error) {
    const { code, message, data } = answer.error;
    throw new RpcError("rpc", `${method}: ${message}`, { code, data });
  }
  return answer.result;
}

export const toHex = (n) => "0x" + BigInt(n).toString(16);
