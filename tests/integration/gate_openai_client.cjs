// The stock `openai` npm client against tether-gate's proxy (the probe):
//   node gate_openai_client.cjs BASE_URL MODE [MODEL]
// MODE: chat, stream, completions, embeddings, models. Prints one JSON
// object: what the client received (and, for a stream, when its first
// chunk and its end arrived, in ms from the call), or {"error": status,
// "code", "retry_after"} when the call was refused. The API key is a
// fake: it must never reach the upstream. Needs NODE_PATH to reach the
// installed package and NODE_EXTRA_CA_CERTS to trust the probe.
const OpenAI = require('openai');

async function main() {
  const [base, mode, model] = process.argv.slice(2);
  const client = new OpenAI({ baseURL: base, apiKey: 'sk-client-secret-never-forwarded', maxRetries: 0 });
  const messages = [{ role: 'user', content: 'Who holds the key?' }];
  let out;
  try {
    if (mode === 'chat') {
      const r = await client.chat.completions.create({ model: model || 'gpt-4o-mini', messages });
      out = { content: r.choices[0].message.content, usage: r.usage };
    } else if (mode === 'stream') {
      const t0 = Date.now();
      let first = null, chunks = 0, content = '', usage = null;
      const stream = await client.chat.completions.create({ model: model || 'gpt-4o-mini', messages, stream: true });
      for await (const chunk of stream) {
        if (first === null) first = Date.now() - t0;
        chunks++;
        if (chunk.choices.length > 0 && chunk.choices[0].delta.content) content += chunk.choices[0].delta.content;
        if (chunk.usage) usage = chunk.usage;
      }
      out = { content, chunks, usage, first_ms: first, end_ms: Date.now() - t0 };
    } else if (mode === 'completions') {
      const r = await client.completions.create({ model: model || 'gpt-4o-mini', prompt: 'Who holds the key?', max_tokens: 16 });
      out = { content: r.choices[0].text, usage: r.usage };
    } else if (mode === 'embeddings') {
      const r = await client.embeddings.create({ model: model || 'text-embedding-3-small', input: 'key', encoding_format: 'float' });
      out = { dimensions: r.data[0].embedding.length, usage: r.usage };
    } else if (mode === 'models') {
      const ids = [];
      for await (const m of client.models.list()) ids.push(m.id);
      out = { models: ids.sort() };
    } else {
      throw new Error('unknown mode ' + mode);
    }
  } catch (e) {
    if (e instanceof OpenAI.APIError) {
      // tether's refusals are {"error": CODE, "error_description": ...}:
      // the client exposes the body's "error" member as e.error.
      out = { error: e.status, code: typeof e.error === 'string' ? e.error : null,
              retry_after: e.headers ? e.headers.get('retry-after') : null };
    } else {
      throw e;
    }
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(String(e)); process.exit(1); });
