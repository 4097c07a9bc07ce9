// An app on the device with the stock OpenAI client: its base URL is the
// agent's AI endpoint, its API key a placeholder the gateway must never see.
//   node openai_app.mjs BASE_URL   prints one JSON object with what it got
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2], apiKey: "sk-app-secret", maxRetries: 0 });
const result = {};

const models = await client.models.list();
result.models = models.data.map((m) => m.id);

const plain = await client.chat.completions.create({
  model: "stand-in-model",
  messages: [{ role: "user", content: "What is the answer?" }],
});
result.plain = plain.choices[0].message.content;

const start = Date.now();
const stream = await client.chat.completions.create({
  model: "stand-in-model",
  messages: [{ role: "user", content: "What is the answer?" }],
  stream: true,
});
let text = "";
const arrivals = [];
for await (const chunk of stream) {
  text += chunk.choices[0]?.delta?.content ?? "";
  arrivals.push(Date.now() - start);
}
result.streamed = text;
result.first_ms = arrivals[0];
result.last_ms = arrivals[arrivals.length - 1];
result.chunks = arrivals.length;
console.log(JSON.stringify(result));
