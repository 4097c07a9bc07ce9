// An app on the device with the stock OpenAI client (the `openai` npm
// package): its base URL is the agent's AI endpoint, its API key a
// placeholder that must reach neither the gateway nor the upstream. Used by
// tests/integration/gate_chain.sh and scripts/demo.sh.
//   node device_app.mjs BASE_URL MODE [MODEL]
// MODE:
//   chat           one answer; prints {"content", "usage"}
//   stream         one streamed answer; prints {"content", "chunks",
//                  "arrivals"} (ms from the call at which each chunk came)
//   print          one streamed answer, written out as it arrives, then a
//                  line; how many chunks came and when, on standard error
//   until-refused  answers until one is refused (at most 200); prints
//                  {"answered"} and the refusal
//   streams-4      four streamed answers started together; prints
//                  {"contents", "first", "last"} (for each stream, the
//                  clock time in ms of its first and its last chunk)
// A refused call prints {"status", "error", "retry_after"} (and with
// print, exits 1): the status, the error code of the answer's body and its
// Retry-After header.
import OpenAI from "openai";

const [base, mode, model = "gpt-4o-mini"] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base, apiKey: "sk-app-secret-never-forwarded", maxRetries: 0 });
const messages = [{ role: "user", content: "Who holds the key?" }];

function refusal(e) {
  if (!(e instanceof OpenAI.APIError) || e.status === undefined) throw e;
  // tether's refusals carry their code as the body's "error" member.
  return { status: e.status, error: typeof e.error === "string" ? e.error : e.error?.code ?? null,
           retry_after: e.headers?.get("retry-after") ?? null };
}

async function chat() {
  const r = await client.chat.completions.create({ model, messages });
  return { content: r.choices[0].message.content, usage: r.usage };
}

// Calls onChunk(text, ms) for each chunk as it arrives.
async function stream(onChunk) {
  const start = Date.now();
  const s = await client.chat.completions.create({ model, messages, stream: true });
  for await (const chunk of s) onChunk(chunk.choices[0]?.delta?.content ?? "", Date.now() - start);
}

let out;
try {
  if (mode === "chat") {
    out = await chat();
  } else if (mode === "stream") {
    out = { content: "", chunks: 0, arrivals: [] };
    await stream((text, ms) => {
      out.content += text;
      out.chunks++;
      out.arrivals.push(ms);
    });
  } else if (mode === "print") {
    const arrivals = [];
    await stream((text, ms) => {
      process.stdout.write(text);
      arrivals.push(ms);
    });
    process.stdout.write("\n");
    console.error(`${arrivals.length} chunks, the first ${arrivals[0]} ms and the last ` +
                  `${arrivals[arrivals.length - 1]} ms after the question`);
    process.exit(0);
  } else if (mode === "streams-4") {
    const one = async () => {
      const r = { content: "", first: null, last: null };
      await stream((text) => {
        r.content += text;
        r.first ??= Date.now();
        r.last = Date.now();
      });
      return r;
    };
    const all = await Promise.all([one(), one(), one(), one()]);
    out = { contents: all.map((r) => r.content), first: all.map((r) => r.first),
            last: all.map((r) => r.last) };
  } else if (mode === "until-refused") {
    let answered = 0;
    out = null;
    while (out === null && answered < 200) {
      try {
        await chat();
        answered++;
      } catch (e) {
        out = { answered, ...refusal(e) };
      }
    }
    out ??= { answered };
  } else {
    console.error("usage: device_app.mjs BASE_URL chat|stream|print|streams-4|until-refused [MODEL]");
    process.exit(2);
  }
} catch (e) {
  out = refusal(e);
  if (mode === "print") {
    console.error(`refused: HTTP ${out.status} ${out.error}`);
    process.exit(1);
  }
}
console.log(JSON.stringify(out));
